// RemoteConsent over the AgentRouter: a ConsentRequest frame out, the
// matching ConsentResponse back.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConsentMode, ConsentRequestSchema } from "../../gen/guru/wire/v1/consent_pb.js";
import type { Hello } from "../../gen/guru/wire/v1/wire_pb.js";
import type { AgentConsentPolicy, RemoteConsent } from "../domain/remote-consent.ts";
import type { AgentRouter } from "./agent-router.ts";

export function createRemoteConsent(router: AgentRouter): RemoteConsent {
  return {
    async ask(agentId, question, timeoutMs) {
      const reply = await router.request(
        agentId,
        {
          case: "consentAsk",
          value: create(ConsentRequestSchema, { ...question, expiresAt: timestampFromDate(question.expiresAt) }),
        },
        (frame) => frame.kind.case === "consentAnswer" && frame.kind.value.sessionId === question.sessionId,
        timeoutMs,
      );
      if (reply.kind.case !== "consentAnswer") throw new Error("unreachable: the matcher accepts consent answers only");
      const { approved, responder, reason, timedOut } = reply.kind.value;
      return { approved, responder, reason, timedOut };
    },
  };
}

const modeOf: Record<ConsentMode, AgentConsentPolicy["mode"]> = {
  [ConsentMode.UNSPECIFIED]: null,
  [ConsentMode.ASK]: "ask",
  [ConsentMode.AUTO_APPROVE]: "auto-approve",
  [ConsentMode.DENY]: "deny",
};

/** What a Hello says about consent; an agent too old to say cannot ask. */
export function consentPolicyOf(hello: Hello): AgentConsentPolicy {
  return { mode: modeOf[hello.consentMode] ?? null, requiresConsent: hello.requiresConsent };
}
