import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import { DescriptorProtoSchema, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { RunCommandRequestSchema } from "../../gen/guru/api/v1/exec_pb.js";
import { ListSessionsRequestSchema } from "../../gen/guru/api/v1/sessions_pb.js";
import { findUnknownEnumName } from "./strict-enums.ts";

/** A message with an enum in a map value, nested two levels deep (none of the API's requests has one yet). */
function mapOfEnums(): DescMessage {
  const { ENUM: TYPE_ENUM, MESSAGE: TYPE_MESSAGE, STRING: TYPE_STRING } = FieldDescriptorProto_Type;
  const file = create(FileDescriptorProtoSchema, {
    name: "t.proto",
    package: "t",
    syntax: "proto3",
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_UNSPECIFIED", number: 0 },
          { name: "COLOR_RED", number: 1 },
        ],
      },
    ],
    messageType: [
      {
        name: "Outer",
        field: [{ name: "inner", number: 1, type: TYPE_MESSAGE, typeName: ".t.Inner", label: 1, jsonName: "inner" }],
      },
      {
        name: "Inner",
        field: [{ name: "colors", number: 1, type: TYPE_MESSAGE, typeName: ".t.Inner.ColorsEntry", label: 3, jsonName: "colors" }],
        nestedType: [
          {
            name: "ColorsEntry",
            options: { mapEntry: true },
            field: [
              { name: "key", number: 1, type: TYPE_STRING, label: 1, jsonName: "key" },
              { name: "value", number: 2, type: TYPE_ENUM, typeName: ".t.Color", label: 1, jsonName: "value" },
            ],
          },
        ],
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getMessage("t.Outer")!;
}

describe("unknown enum names in JSON", () => {
  it("finds a top-level enum name the schema does not define, under its JSON or proto name", () => {
    expect(findUnknownEnumName(RunCommandRequestSchema, { sessionId: "s", shell: "bash" })).toEqual({
      field: "shell",
      value: "bash",
      allowed: ["SHELL_UNSPECIFIED", "SHELL_BASH", "SHELL_SH", "SHELL_POWERSHELL", "SHELL_PWSH", "SHELL_CMD"],
    });
    expect(findUnknownEnumName(ListSessionsRequestSchema, { status: "active" })?.field).toBe("status");
  });

  it("accepts known names, numbers (protobuf-es judges those), null and unknown fields", () => {
    expect(findUnknownEnumName(RunCommandRequestSchema, { shell: "SHELL_BASH", futureField: "bash", env: { shell: "bash" } })).toBeUndefined();
    expect(findUnknownEnumName(RunCommandRequestSchema, { shell: 1 })).toBeUndefined();
    expect(findUnknownEnumName(RunCommandRequestSchema, { shell: null })).toBeUndefined();
    expect(findUnknownEnumName(RunCommandRequestSchema, "not an object")).toBeUndefined();
  });

  it("walks nested messages, lists and maps", () => {
    const outer = mapOfEnums();
    expect(findUnknownEnumName(outer, { inner: { colors: { a: "COLOR_RED", b: "red" } } })).toMatchObject({
      field: 'inner.colors["b"]',
      value: "red",
      allowed: ["COLOR_UNSPECIFIED", "COLOR_RED"],
    });
    expect(findUnknownEnumName(outer, { inner: { colors: { a: "COLOR_RED" } } })).toBeUndefined();
    // A list of messages with an enum field each: google.protobuf.DescriptorProto.field[].type.
    const json = {
      name: "M",
      field: [
        { name: "a", type: "TYPE_STRING" },
        { name: "b", type: "TYPE_STRNG" },
      ],
    };
    expect(findUnknownEnumName(DescriptorProtoSchema, json)).toMatchObject({ field: "field[1].type", value: "TYPE_STRNG" });
  });
});
