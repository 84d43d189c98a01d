import { describe, expect, it } from "vitest";
import type { AgentRecord } from "../store/agents.ts";
import { createAgentKeyLookup } from "./agent-key-lookup.ts";

const agent = (id: string) => ({ id, name: id, keyHash: `h-${id}` }) as AgentRecord & { keyHash: string };

describe("agent key lookup", () => {
  it("checks the keys that arrive while a lookup is in flight together, in the next one", async () => {
    const queries: string[][] = [];
    const lookup = createAgentKeyLookup({
      agents: {
        async findByKeyHashes(hashes) {
          queries.push(hashes);
          await new Promise((r) => setTimeout(r, 20));
          return hashes.filter((h) => h !== "h-unknown").map((h) => agent(h.slice(2)));
        },
      },
    });
    const first = lookup.find("h-a");
    const rest = ["h-b", "h-c", "h-unknown", "h-b"].map((h) => lookup.find(h));
    expect((await first)?.id).toBe("a");
    expect((await Promise.all(rest)).map((a) => a?.id)).toEqual(["b", "c", undefined, "b"]);
    expect(queries).toEqual([["h-a"], ["h-b", "h-c", "h-unknown"]]);
  });

  it("fails the waiters of a failed query and serves the next ones", async () => {
    let fail = true;
    const lookup = createAgentKeyLookup({
      agents: {
        async findByKeyHashes(hashes) {
          if (fail) {
            fail = false;
            throw new Error("database went away");
          }
          return hashes.map((h) => agent(h.slice(2)));
        },
      },
    });
    await expect(lookup.find("h-a")).rejects.toThrow("database went away");
    expect((await lookup.find("h-a"))?.id).toBe("a");
  });
});
