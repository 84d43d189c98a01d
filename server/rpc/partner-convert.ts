// Partner records and events ↔ guru.integration.v1 messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AgentRef as ApiAgentRef } from "../../gen/guru/integration/v1/integration_pb.js";
import {
  ConsentReceiptSchema,
  ConsentState,
  SessionEventSchema,
  SessionEventType,
  SessionMode,
  SessionSchema,
  SessionStatus,
  type Session,
  type SessionEvent as ApiSessionEvent,
} from "../../gen/guru/integration/v1/sessions_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { AgentRef } from "../domain/partner-key.ts";
import type { SessionEvent } from "../domain/session-events.ts";
import type { ConsentState as DomainConsentState, PartnerSessionRecord, SessionMode as DomainMode } from "../store/partner-sessions.ts";
import type { SessionStatus as DomainStatus } from "../store/sessions.ts";
import { timestamp } from "./convert.ts";

const statusOf: Record<DomainStatus, SessionStatus> = {
  pending: SessionStatus.PENDING,
  active: SessionStatus.ACTIVE,
  closed: SessionStatus.CLOSED,
  expired: SessionStatus.EXPIRED,
};

const consentOf: Record<DomainConsentState, ConsentState> = {
  not_required: ConsentState.NOT_REQUIRED,
  waiting: ConsentState.WAITING,
  asked: ConsentState.ASKED,
  approved: ConsentState.APPROVED,
  denied: ConsentState.DENIED,
  timed_out: ConsentState.TIMED_OUT,
};

const eventTypeOf: Record<SessionEvent["type"], SessionEventType> = {
  pending: SessionEventType.PENDING,
  consent_asked: SessionEventType.CONSENT_ASKED,
  approved: SessionEventType.APPROVED,
  denied: SessionEventType.DENIED,
  timed_out: SessionEventType.TIMED_OUT,
  active: SessionEventType.ACTIVE,
  closed: SessionEventType.CLOSED,
};

export function modeFromApi(mode: SessionMode): DomainMode {
  if (mode === SessionMode.UNATTENDED) return "unattended";
  if (mode === SessionMode.ATTENDED) return "attended";
  throw new GuruError("invalid", "mode is required: SESSION_MODE_UNATTENDED or SESSION_MODE_ATTENDED", { reason: "MODE_REQUIRED" });
}

export function statusFromApi(status: SessionStatus): DomainStatus | undefined {
  if (status === SessionStatus.UNSPECIFIED) return undefined;
  const found = (Object.keys(statusOf) as DomainStatus[]).find((k) => statusOf[k] === status);
  if (found === undefined) throw new GuruError("invalid", `unknown session status ${status}`);
  return found;
}

export function agentRefFromApi(ref: ApiAgentRef | undefined): AgentRef {
  switch (ref?.ref.case) {
    case "agentId":
      return { agentId: ref.ref.value };
    case "externalId":
      return { externalId: ref.ref.value };
    default:
      return undefined;
  }
}

/** The optional agent filter of ListSessions: absent or empty means every agent. */
export function optionalAgentRef(ref: ApiAgentRef | undefined): AgentRef | undefined {
  return ref?.ref.case === undefined ? undefined : agentRefFromApi(ref);
}

export function toApiPartnerSession(s: PartnerSessionRecord): Session {
  const r = s.consentReceipt;
  return create(SessionSchema, {
    sessionId: s.id,
    agentId: s.agentId,
    externalId: s.externalId ?? "",
    mode: s.mode === "attended" ? SessionMode.ATTENDED : SessionMode.UNATTENDED,
    status: statusOf[s.status],
    technician: s.technicianName,
    capabilities: s.capabilities,
    consentState: consentOf[s.consentState],
    consent: r
      ? create(ConsentReceiptSchema, {
          technician: r.technician,
          partner: r.partner,
          capabilities: r.capabilities,
          approved: r.approved,
          responder: r.responder,
          reason: r.reason,
          askedAt: timestampFromDate(new Date(r.askedAt)),
          answeredAt: timestampFromDate(new Date(r.answeredAt)),
        })
      : undefined,
    createdAt: timestamp(s.openedAt),
    activatedAt: timestamp(s.activatedAt),
    closedAt: timestamp(s.closedAt),
    closeReason: s.closeReason ?? "",
  });
}

export function toApiSessionEvent(e: SessionEvent): ApiSessionEvent {
  return create(SessionEventSchema, { type: eventTypeOf[e.type], session: toApiPartnerSession(e.session), reason: e.reason, at: timestampFromDate(e.at) });
}
