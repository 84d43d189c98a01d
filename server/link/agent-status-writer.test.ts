import { describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import type { AgentInventory } from "../store/agents.ts";
import { createAgentStatusWriter } from "./agent-status-writer.ts";

const inventory: AgentInventory = { hostname: "h", os: "linux", osRelease: "6", arch: "x64", agentVersion: "1", capabilities: [], wireFeatures: [] };

function recordingAgents(options: { failFirst?: boolean } = {}) {
  const calls: { online: string[]; offline: string[] }[] = [];
  let release: (() => void) | undefined;
  let failNext = options.failFirst ?? false;
  return {
    calls,
    hold() {
      return new Promise<void>((r) => (release = r));
    },
    release: () => release?.(),
    agents: {
      async applyLinkStatus(online: { id: string }[], offline: string[]) {
        calls.push({ online: online.map((o) => o.id), offline });
        if (failNext) {
          failNext = false;
          throw new Error("database went away");
        }
      },
    },
  };
}

describe("agent status writer", () => {
  it("writes the changes of one event-loop turn as one group, and those arriving meanwhile as the next", async () => {
    const rec = recordingAgents();
    const writer = createAgentStatusWriter({ agents: rec.agents, logger: silentLogger() });
    const first = Array.from({ length: 50 }, (_, i) => writer.online(`a${i}`, inventory));
    await Promise.all(first);
    expect(rec.calls).toEqual([{ online: first.map((_, i) => `a${i}`), offline: [] }]);
    await Promise.all([writer.offline("a1"), writer.online("b1", inventory)]);
    expect(rec.calls[1]).toEqual({ online: ["b1"], offline: ["a1"] });
  });

  it("keeps an agent's last change when it changes twice before a write", async () => {
    const rec = recordingAgents();
    const writer = createAgentStatusWriter({ agents: rec.agents, logger: silentLogger() });
    await Promise.all([writer.offline("x"), writer.online("x", inventory)]);
    await Promise.all([writer.online("y", inventory), writer.offline("y")]);
    expect(rec.calls).toEqual([
      { online: ["x"], offline: [] },
      { online: [], offline: ["y"] },
    ]);
  });

  it("splits a large group at maxBatch", async () => {
    const rec = recordingAgents();
    const writer = createAgentStatusWriter({ agents: rec.agents, logger: silentLogger(), maxBatch: 10 });
    await Promise.all(Array.from({ length: 25 }, (_, i) => writer.online(`a${i}`, inventory)));
    expect(rec.calls.map((c) => c.online.length)).toEqual([10, 10, 5]);
  });

  it("rejects the callers of a failed write and goes on with the next group", async () => {
    const rec = recordingAgents({ failFirst: true });
    const writer = createAgentStatusWriter({ agents: rec.agents, logger: silentLogger() });
    const failed = writer.online("a", inventory);
    await expect(failed).rejects.toThrow("database went away");
    await writer.online("b", inventory);
    expect(rec.calls).toEqual([
      { online: ["a"], offline: [] },
      { online: ["b"], offline: [] },
    ]);
    await writer.idle();
  });
});
