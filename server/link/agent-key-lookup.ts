// Agent key checks in groups: the upgrades that arrive while one lookup is in
// flight are checked together by the next, in one query. In a reconnect storm
// a query per upgrade, not the CPU, set the pace; when the server is quiet a
// lookup goes out at once.
import type { AgentRecord, AgentsRepository } from "../store/agents.ts";

export interface AgentKeyLookup {
  /** The agent holding this key hash (revoked ones included), or undefined. */
  find(keyHash: string): Promise<AgentRecord | undefined>;
}

export function createAgentKeyLookup(deps: { agents: Pick<AgentsRepository, "findByKeyHashes">; maxBatch?: number }): AgentKeyLookup {
  const maxBatch = deps.maxBatch ?? 500;
  let waiting = new Map<string, { resolve(a: AgentRecord | undefined): void; reject(err: unknown): void }[]>();
  let running = false;

  async function drain(): Promise<void> {
    running = true;
    try {
      while (waiting.size > 0) {
        const batch = [...waiting].slice(0, maxBatch);
        if (batch.length === waiting.size) waiting = new Map();
        else for (const [hash] of batch) waiting.delete(hash);
        try {
          const found = new Map((await deps.agents.findByKeyHashes(batch.map(([hash]) => hash))).map(({ keyHash, ...agent }) => [keyHash, agent]));
          for (const [hash, waiters] of batch) for (const w of waiters) w.resolve(found.get(hash));
        } catch (err) {
          for (const [, waiters] of batch) for (const w of waiters) w.reject(err);
        }
      }
    } finally {
      running = false;
    }
  }

  return {
    find(keyHash) {
      return new Promise((resolve, reject) => {
        const waiters = waiting.get(keyHash);
        if (waiters) waiters.push({ resolve, reject });
        else waiting.set(keyHash, [{ resolve, reject }]);
        if (!running) void drain();
      });
    },
  };
}
