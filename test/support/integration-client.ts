// A partner's client of guru.integration.v1 over real HTTP/1.1 (Connect
// protocol), with an integration key or any other credential as the bearer.
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { IntegrationService } from "../../gen/guru/integration/v1/integration_pb.js";

export type IntegrationClient = Client<typeof IntegrationService>;

export function createIntegrationClient(url: string, credential?: string): IntegrationClient {
  const transport = createConnectTransport({
    baseUrl: url,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        if (credential !== undefined) req.header.set("authorization", `Bearer ${credential}`);
        return next(req);
      },
    ],
  });
  return createClient(IntegrationService, transport);
}

/** An executable consent.command for an agent's policy: answers as the file `decision` in dir says (approve, deny, hang), logging each question. */
export function prompterScript(dir: string): string {
  return `#!/bin/sh
echo "$GURU_CONSENT_SESSION $GURU_CONSENT_TECHNICIAN $GURU_CONSENT_CAPABILITIES" >> "${dir}/asked.log"
case "$(cat "${dir}/decision")" in
  approve) exit 0 ;;
  slow-approve) sleep 1; exit 0 ;;
  deny) echo "not now, I am presenting"; exit 1 ;;
  *) exec sleep 60 ;;
esac
`;
}
