// Agents' online/offline status in the database, written in groups. Each
// handshake used to commit its own UPDATE (a WAL flush each); when thousands
// of agents reconnect at once those commits, not the CPU, set the pace. Here
// a status change waits while one group write is in flight and goes with the
// next: at most one write at a time, as many agents per write as arrived
// meanwhile, and no added delay when the server is quiet. The latest change
// of an agent wins within a group, so an offline mark queued before a
// reconnect's online mark never lands after it.
import type { Logger } from "../../lib/logging.ts";
import type { AgentInventory, AgentsRepository } from "../store/agents.ts";

export interface AgentStatusWriter {
  /** Resolves once the agent is recorded online; rejects if that write failed. */
  online(agentId: string, inventory: AgentInventory): Promise<void>;
  offline(agentId: string): Promise<void>;
  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void>;
}

interface Pending {
  change: { online: true; inventory: AgentInventory } | { online: false };
  waiters: { resolve(): void; reject(err: unknown): void }[];
}

export function createAgentStatusWriter(deps: { agents: Pick<AgentsRepository, "applyLinkStatus">; logger: Logger; maxBatch?: number }): AgentStatusWriter {
  const maxBatch = deps.maxBatch ?? 1_000;
  let pending = new Map<string, Pending>();
  let flushing: Promise<void> | undefined;

  function enqueue(agentId: string, change: Pending["change"]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry = pending.get(agentId);
      if (entry) {
        entry.change = change;
        entry.waiters.push({ resolve, reject });
      } else pending.set(agentId, { change, waiters: [{ resolve, reject }] });
      flushing ??= flush();
    });
  }

  async function flush(): Promise<void> {
    // Let the handshakes of this turn of the event loop join the group.
    await new Promise((r) => setImmediate(r));
    while (pending.size > 0) {
      const batch = [...pending].slice(0, maxBatch);
      if (batch.length === pending.size) pending = new Map();
      else for (const [id] of batch) pending.delete(id);
      const online = batch.flatMap(([id, p]) => (p.change.online ? [{ id, inventory: p.change.inventory }] : []));
      const offline = batch.flatMap(([id, p]) => (p.change.online ? [] : [id]));
      try {
        await deps.agents.applyLinkStatus(online, offline);
        for (const [, p] of batch) for (const w of p.waiters) w.resolve();
      } catch (err) {
        deps.logger.error({ err, agents: batch.length }, "could not record agents' link status");
        for (const [, p] of batch) for (const w of p.waiters) w.reject(err);
      }
    }
    flushing = undefined;
  }

  return {
    online: (agentId, inventory) => enqueue(agentId, { online: true, inventory }),
    offline: (agentId) => enqueue(agentId, { online: false }),
    async idle() {
      while (flushing) await flushing;
    },
  };
}
