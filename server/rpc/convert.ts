// Domain records → API messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AgentSchema, type Agent } from "../../gen/guru/api/v1/agents_pb.js";
import { SessionSchema, SessionStatus, type Session } from "../../gen/guru/api/v1/sessions_pb.js";
import type { AgentRecord } from "../store/agents.ts";
import type { SessionRecord } from "../store/sessions.ts";

export function timestamp(date: Date | null | undefined): Timestamp | undefined {
  return date ? timestampFromDate(date) : undefined;
}

const statusOf: Record<SessionRecord["status"], SessionStatus> = {
  pending: SessionStatus.PENDING,
  active: SessionStatus.ACTIVE,
  closed: SessionStatus.CLOSED,
  expired: SessionStatus.EXPIRED,
};

export function sessionStatusFromApi(status: SessionStatus): SessionRecord["status"] | undefined {
  return (Object.keys(statusOf) as SessionRecord["status"][]).find((k) => statusOf[k] === status);
}

export function toApiSession(s: SessionRecord): Session {
  return create(SessionSchema, {
    sessionId: s.id,
    agentId: s.agentId,
    technicianId: s.technicianId,
    status: statusOf[s.status],
    openedAt: timestamp(s.openedAt),
    lastActivityAt: timestamp(s.lastActivityAt),
    closedAt: timestamp(s.closedAt),
    closeReason: s.closeReason ?? "",
  });
}

/** `heardAt`: when the agent's live link last heard from it; undefined when it is offline. */
export function toApiAgent(a: AgentRecord, heardAt: Date | undefined): Agent {
  return create(AgentSchema, {
    agentId: a.id,
    name: a.name,
    online: heardAt !== undefined,
    // A live link knows its last frame (at most a heartbeat interval old); the database keeps the moment it went offline.
    lastSeenAt: timestamp(heardAt ?? a.lastSeenAt),
    hostname: a.hostname ?? "",
    os: a.os ?? "",
    osRelease: a.osRelease ?? "",
    arch: a.arch ?? "",
    agentVersion: a.agentVersion ?? "",
    capabilities: a.capabilities ?? [],
    enrolledAt: timestamp(a.enrolledAt),
    revoked: a.revokedAt !== null,
  });
}
