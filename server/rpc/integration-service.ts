import type { ServiceImpl } from "@connectrpc/connect";
import type { IntegrationService } from "../../gen/guru/integration/v1/integration_pb.js";

export function integrationServiceImpl(info: { contractVersion: string; serverVersion: string; features: string[]; wireProtocol: string }): ServiceImpl<typeof IntegrationService> {
  return {
    getCapabilities() {
      return { ...info };
    },
  };
}
