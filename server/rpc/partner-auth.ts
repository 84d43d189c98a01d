// Who may call what, decided per method: the partner capability probe is
// open, the rest of guru.integration.v1 takes integration keys only, and
// every other service takes technician tokens only.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { GuruError } from "../../lib/errors.ts";
import { looksLikeIntegrationKey, type IntegrationKeyCheck } from "../auth/integration-keys.ts";
import type { PartnerKey } from "../domain/partner-key.ts";

const integrationServiceName = "guru.integration.v1.IntegrationService";

/** Methods anyone may call, by "service/method". */
const publicMethods = new Set([`${integrationServiceName}/GetCapabilities`]);

export type MethodAccess = "public" | "integration_key" | "technician_token";

export function accessOf(service: string, method: string): MethodAccess {
  if (publicMethods.has(`${service}/${method}`)) return "public";
  return service === integrationServiceName ? "integration_key" : "technician_token";
}

export const partnerKeyContext = createContextKey<PartnerKey | undefined>(undefined, { description: "the calling partner's integration key" });

export function partnerKeyOf(ctx: HandlerContext): PartnerKey {
  const key = ctx.values.get(partnerKeyContext);
  if (key === undefined) throw new GuruError("unauthenticated", "no integration key");
  return key;
}

/** Integration keys are refused by the technician API with a message that says where they belong. */
export function refuseIntegrationKey(credential: string): void {
  if (looksLikeIntegrationKey(credential)) {
    throw new GuruError("unauthenticated", `integration keys are accepted only by ${integrationServiceName}; the technician API needs a technician token`, {
      reason: "INTEGRATION_KEY_REFUSED",
    });
  }
}

export type { IntegrationKeyCheck };
