import { describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import type { Store } from "../store/index.ts";
import type { UploadRecord } from "../store/uploads.ts";
import type { AgentFiles, AgentUploadStream } from "./agent-files.ts";
import { createUploadStreams } from "./upload-streams.ts";

function fakes(committedAtOpen = 0) {
  const writes: [number, number][] = [];
  const persisted: number[] = [];
  let opens = 0;
  const agents = {
    async openUpload() {
      opens++;
      let committed = committedAtOpen;
      const stream: AgentUploadStream = {
        get committedOffset() {
          return committed;
        },
        failure: undefined,
        async write(offset, data) {
          writes.push([offset, data.byteLength]);
          committed = offset + data.byteLength;
        },
        finish: async () => ({ size: committed, sha256: "", backupPath: "", path: "" }),
        abort: async () => {},
        detach: () => {},
      };
      return stream;
    },
  } as unknown as AgentFiles;
  const store = { uploads: { setCommitted: async (_id: string, n: number) => persisted.push(n) > 0 } } as unknown as Store;
  const row = { id: "u1", agentId: "a", technicianId: "t", path: "p", size: 100, sha256: "x", overwrite: false, committedOffset: 0 } as UploadRecord;
  return { writes, persisted, opens: () => opens, agents, store, row };
}

describe("upload streams", () => {
  it("starts at the agent's committed offset, skips what it has, refuses gaps", async () => {
    const f = fakes(10);
    const streams = createUploadStreams({ store: f.store, agents: f.agents, logger: silentLogger(), orderWaitMs: 50, persistEveryBytes: 1 });
    const live = await streams.attach(f.row, "s1");
    expect(live.received).toBe(10);
    await streams.write(live, 0, new Uint8Array(15)); // bytes 0..9 are already there
    expect(f.writes).toEqual([[10, 5]]);
    await streams.write(live, 5, new Uint8Array(5)); // a retry of known bytes: nothing sent
    expect(f.writes).toHaveLength(1);
    await expect(streams.write(live, 20, new Uint8Array(5))).rejects.toMatchObject({
      kind: "failed_precondition",
      message: expect.stringContaining("expected offset 15"),
    });
    expect(f.persisted.at(-1)).toBe(15);
    // Same session: the channel is reused; another session reopens it.
    await streams.attach(f.row, "s1");
    expect(f.opens()).toBe(1);
    await streams.attach(f.row, "s2");
    expect(f.opens()).toBe(2);
  });

  it("lets a pipelined chunk that arrived early wait for its turn", async () => {
    const f = fakes();
    const streams = createUploadStreams({ store: f.store, agents: f.agents, logger: silentLogger(), orderWaitMs: 1000 });
    const live = await streams.attach(f.row, "s1");
    const second = streams.write(live, 50, new Uint8Array(50));
    await new Promise((r) => setTimeout(r, 20));
    await streams.write(live, 0, new Uint8Array(50));
    await second;
    expect(f.writes).toEqual([
      [0, 50],
      [50, 50],
    ]);
  });
});
