// `guru admin create-integration-key NAME [--origin URL]…`, `list-integration-keys`,
// `revoke-integration-key KEY_ID`: keys for partner servers (admin token needed).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ApiClients } from "../lib/api-client.ts";
import { GuruError } from "../lib/errors.ts";
import type { ParsedArgs } from "../lib/flags.ts";

const out = (line: string) => process.stdout.write(`${line}\n`);

function list(value: ParsedArgs["flags"][string] | undefined): string[] {
  if (Array.isArray(value)) return value;
  return typeof value === "string" ? [value] : [];
}

export async function integrationKeyCommand(api: ApiClients, action: string, arg: string | undefined, flags: ParsedArgs["flags"]): Promise<number> {
  switch (action) {
    case "create-integration-key": {
      if (!arg) throw new GuruError("invalid", "usage: guru admin create-integration-key NAME [--origin https://rmm.example.com]…");
      const { keyId, key } = await api.admin.createIntegrationKey({ name: arg, allowedOrigins: list(flags.origin) });
      process.stderr.write(`integration key ${keyId} created. It is shown once; the partner sends it as 'Authorization: Bearer <key>'.\n`);
      out(key);
      return 0;
    }
    case "list-integration-keys": {
      const { keys } = await api.admin.listIntegrationKeys({});
      if (flags.json) {
        out(JSON.stringify(keys.map((k) => ({ keyId: k.keyId, name: k.name, allowedOrigins: k.allowedOrigins, revoked: k.revokedAt !== undefined }))));
        return 0;
      }
      for (const k of keys) {
        const state = k.revokedAt
          ? `revoked ${timestampDate(k.revokedAt).toISOString()}`
          : k.lastUsedAt
            ? `used ${timestampDate(k.lastUsedAt).toISOString()}`
            : "never used";
        out(`${k.keyId}  ${k.name}  ${k.allowedOrigins.join(",") || "-"}  ${state}`);
      }
      return 0;
    }
    default: {
      if (!arg) throw new GuruError("invalid", "usage: guru admin revoke-integration-key KEY_ID");
      await api.admin.revokeIntegrationKey({ keyId: arg });
      return 0;
    }
  }
}
