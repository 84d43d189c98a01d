// JSON requests: unknown FIELDS stay ignored (a newer client may send fields
// this server does not know yet), but an unknown ENUM NAME is refused. Connect
// parses JSON with protobuf-es' ignoreUnknownFields, which drops both alike:
// `"shell": "bash"` (instead of "SHELL_BASH") left the field unset and the
// command ran under the agent's default shell. Each method's JSON reader here
// first walks the request against the method's input descriptor (nested
// messages, lists and maps included) and refuses an enum string it does not
// know with InvalidArgument naming the field and its values.
import type { DescEnum, DescField, DescMessage, DescService, JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { connectErrorOf } from "../../lib/api-errors.ts";
import { GuruError } from "../../lib/errors.ts";

export interface UnknownEnumName {
  /** The field's path in the request, in JSON names: `shell`, `items[2].kind`, `labels["x"]`. */
  field: string;
  value: string;
  allowed: string[];
}

const customJson = new Set(
  [
    "Any",
    "Timestamp",
    "Duration",
    "FieldMask",
    "Struct",
    "Value",
    "ListValue",
    "DoubleValue",
    "FloatValue",
    "Int64Value",
    "UInt64Value",
    "Int32Value",
    "UInt32Value",
    "BoolValue",
    "StringValue",
    "BytesValue",
  ].map((name) => `google.protobuf.${name}`),
);

/** The first enum string in `json` that `desc` does not define, if any. */
export function findUnknownEnumName(desc: DescMessage, json: unknown, path = ""): UnknownEnumName | undefined {
  // Well-known types have their own JSON forms (Timestamp as a string, Struct as any object).
  if (!isObject(json) || customJson.has(desc.typeName)) return undefined;
  for (const field of desc.fields) {
    for (const key of new Set([field.jsonName, field.name])) {
      if (!Object.hasOwn(json, key)) continue;
      const found = checkField(field, json[key], path === "" ? key : `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

function checkField(field: DescField, value: unknown, at: string): UnknownEnumName | undefined {
  switch (field.fieldKind) {
    case "enum":
      return checkEnum(field.enum, value, at);
    case "message":
      return findUnknownEnumName(field.message, value, at);
    case "list":
      if (!Array.isArray(value)) return undefined;
      for (const [i, item] of value.entries()) {
        const found =
          field.listKind === "enum"
            ? checkEnum(field.enum, item, `${at}[${i}]`)
            : field.listKind === "message"
              ? findUnknownEnumName(field.message, item, `${at}[${i}]`)
              : undefined;
        if (found) return found;
      }
      return undefined;
    case "map":
      if (!isObject(value)) return undefined;
      for (const [k, item] of Object.entries(value)) {
        const found =
          field.mapKind === "enum"
            ? checkEnum(field.enum, item, `${at}[${JSON.stringify(k)}]`)
            : field.mapKind === "message"
              ? findUnknownEnumName(field.message, item, `${at}[${JSON.stringify(k)}]`)
              : undefined;
        if (found) return found;
      }
      return undefined;
    default:
      return undefined;
  }
}

function checkEnum(desc: DescEnum, value: unknown, at: string): UnknownEnumName | undefined {
  // null and numbers are protobuf-es' to judge (numbers are open enum values); only names can be unknown.
  if (typeof value !== "string" || desc.typeName === "google.protobuf.NullValue") return undefined;
  if (desc.values.some((v) => v.name === value || v.jsonName === value)) return undefined;
  return { field: at, value, allowed: desc.values.map((v) => v.name) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The refusal, with the same ErrorInfo detail as every other API error. */
function unknownEnumError(found: UnknownEnumName): ConnectError {
  const message = `${found.field}: unknown value ${JSON.stringify(found.value)}; use one of ${found.allowed.join(", ")}`;
  return connectErrorOf(
    new GuruError("invalid", message, { reason: "UNKNOWN_ENUM_VALUE", metadata: { field: found.field, value: found.value, allowed: found.allowed.join(",") } }),
  );
}

/**
 * JSON options for one method. Connect's JSON serialization takes a
 * `textDecoder` beside the protobuf-es options and hands it every request body
 * just before protobuf-es parses it (Connect, gRPC-Web and gRPC; unary,
 * streamed and GET requests), so the check covers every JSON request. The
 * handler options' type names only the protobuf-es options, hence the cast;
 * test/e2e/error-details.test.ts fails if a Connect upgrade stops calling it.
 */
function strictEnumJsonOptions(input: DescMessage): Partial<JsonReadOptions & JsonWriteOptions> {
  return { textDecoder: strictEnumDecoder(input) } as Partial<JsonReadOptions & JsonWriteOptions>;
}

function strictEnumDecoder(input: DescMessage) {
  const utf8 = new TextDecoder();
  return {
    decode(bytes?: Uint8Array): string {
      const text = utf8.decode(bytes);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return text; // protobuf-es reports malformed JSON in its own words
      }
      const found = findUnknownEnumName(input, json);
      if (found) throw unknownEnumError(found);
      return text;
    },
  };
}

/** Registers every method of a service with its strict JSON reader; methods left out answer Unimplemented. */
export function serveStrict<S extends DescService>(router: ConnectRouter, service: S, impl: Partial<ServiceImpl<S>>): void {
  const methods = impl as Record<string, ((...args: never[]) => unknown) | undefined>;
  for (const method of service.methods) {
    const fn = methods[method.localName];
    const handler =
      fn?.bind(impl) ??
      (() => {
        throw new ConnectError(`${service.typeName}.${method.name} is not served by this server`, Code.Unimplemented);
      });
    router.rpc(method, handler as never, { jsonOptions: strictEnumJsonOptions(method.input) });
  }
}
