// Small seeds for tests that need an agent, a technician or both.
import { randomBytes } from "node:crypto";
import type { Store } from "../../server/store/index.ts";
import type { AgentRecord } from "../../server/store/agents.ts";
import type { TechnicianRecord, TechnicianRole } from "../../server/store/technicians.ts";

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

export function seedAgent(store: Store, name = uniqueName("agent")): Promise<AgentRecord> {
  return store.agents.enroll({ name, keyHash: `hash-${randomBytes(8).toString("hex")}` });
}

export function seedTechnician(store: Store, role: TechnicianRole = "tech", name = uniqueName("tech")): Promise<TechnicianRecord> {
  return store.technicians.create({ name, role });
}

/** A technician's active session on a new agent: the ids audit rows refer to. */
export async function seedSession(store: Store): Promise<{ agentId: string; technicianId: string; sessionId: string }> {
  const [agent, tech] = await Promise.all([seedAgent(store), seedTechnician(store)]);
  const session = await store.sessions.open({ agentId: agent.id, technicianId: tech.id });
  return { agentId: agent.id, technicianId: tech.id, sessionId: session.id };
}
