// AdminService's integration key methods, kept apart from the technician and
// agent administration beside them.
import { create } from "@bufbuild/protobuf";
import { IntegrationKeySchema } from "../../gen/guru/api/v1/integration_keys_pb.js";
import type { AdminService as AdminApi } from "../../gen/guru/api/v1/admin_pb.js";
import type { ServiceImpl } from "@connectrpc/connect";
import type { IntegrationKeyAdmin } from "../domain/integration-keys.ts";
import { principalOf } from "./context.ts";
import { timestamp } from "./convert.ts";

type Methods = Pick<ServiceImpl<typeof AdminApi>, "createIntegrationKey" | "listIntegrationKeys" | "revokeIntegrationKey">;

export function integrationKeyMethods(keys: IntegrationKeyAdmin): Methods {
  return {
    async createIntegrationKey(req, ctx) {
      return keys.create(principalOf(ctx), { name: req.name, allowedOrigins: req.allowedOrigins });
    },
    async listIntegrationKeys(_req, ctx) {
      const list = await keys.list(principalOf(ctx));
      return {
        keys: list.map((k) =>
          create(IntegrationKeySchema, {
            keyId: k.id,
            name: k.name,
            allowedOrigins: k.allowedOrigins,
            createdAt: timestamp(k.createdAt),
            revokedAt: timestamp(k.revokedAt),
            lastUsedAt: timestamp(k.lastUsedAt),
          }),
        ),
      };
    },
    async revokeIntegrationKey(req, ctx) {
      await keys.revoke(principalOf(ctx), req.keyId);
      return {};
    },
  };
}
