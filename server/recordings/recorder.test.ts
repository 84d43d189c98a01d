// The recorder against a real database: asciicast v2 lines in order, UTF-8
// characters split across reads kept whole, the output cap with its marker
// (input still recorded), and the retention sweep taking chunks with rows.
import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import { parseAsciicast } from "../../lib/asciicast.ts";
import { silentLogger } from "../../lib/logging.ts";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { createRecordingService } from "../domain/recordings.ts";
import { createRecorder } from "./recorder.ts";

describeDatabases("terminal recorder", (kind) => {
  const ctx = useTestStore(kind);

  async function recorded(options: { maxOutputBytes?: number; flushBytes?: number }, act: (r: ReturnType<typeof createRecorder>) => Promise<void>) {
    const id = randomUUID();
    const technicianId = (await ctx.store.technicians.create({ name: `rec-${id}`, role: "tech" })).id;
    await ctx.store.terminals.insert({
      id,
      technicianId,
      agentId: null,
      sessionId: null,
      shell: "sh",
      command: null,
      workingDir: null,
      columns: 80,
      rows: 24,
      outcome: "running",
      recordingId: id,
    });
    const recorder = createRecorder({
      terminals: ctx.store.terminals,
      recordingId: id,
      columns: 80,
      rows: 24,
      env: { TERM: "xterm" },
      logger: silentLogger(),
      maxOutputBytes: options.maxOutputBytes ?? 1 << 20,
      flushBytes: options.flushBytes,
      flushIntervalMs: 20,
    });
    await act(recorder);
    const result = await recorder.close();
    let text = "";
    const principal = { technicianId, name: "rec", role: "tech" as const, tokenId: "t" };
    for await (const part of createRecordingService({ store: ctx.store }).read(principal, id))
      if ("data" in part) text += Buffer.from(part.data).toString("utf8");
    return { id, result, cast: parseAsciicast(text), text };
  }

  it("writes asciicast v2 in order across many chunks, keeping split UTF-8 characters whole", async () => {
    const euro = Buffer.from("€");
    const { cast, text, id } = await recorded({ flushBytes: 64 }, async (r) => {
      await r.output(Buffer.concat([Buffer.from("price "), euro.subarray(0, 1)]));
      await r.output(Buffer.concat([euro.subarray(1), Buffer.from("5\r\n")]));
      r.input(Buffer.from("ls\r"));
      r.resize(100, 30);
      for (let i = 0; i < 50; i++) await r.output(Buffer.from(`line ${i}\r\n`));
    });
    expect(cast.header).toMatchObject({ version: 2, width: 80, height: 24, env: { TERM: "xterm" } });
    const output = cast.events
      .filter((e) => e.code === "o")
      .map((e) => e.data)
      .join("");
    expect(output).toBe(`price €5\r\n${Array.from({ length: 50 }, (_, i) => `line ${i}\r\n`).join("")}`);
    expect(cast.events.filter((e) => e.code !== "o")).toMatchObject([
      { code: "i", data: "ls\r" },
      { code: "r", data: "100x30" },
    ]);
    const { rows } = await ctx.testDb.db.query<{ n: number }>("SELECT count(*) AS n FROM terminal_recording_chunks WHERE recording_id = $1", [id]);
    expect(rows[0].n).toBeGreaterThan(5);
    expect((await ctx.store.terminals.get(id))?.recordingBytes).toBe(Buffer.byteLength(text));
  });

  it("stops storing output past the cap with a marker, still storing input; the sweep removes rows and chunks", async () => {
    const { cast, result, id } = await recorded({ maxOutputBytes: 10 }, async (r) => {
      await r.output(Buffer.from("12345"));
      await r.output(Buffer.from("6789abcdef"));
      r.input(Buffer.from("secret-typed\r"));
      await r.output(Buffer.from("more"));
    });
    expect(result.truncated).toBe(true);
    expect(cast.events.map((e) => [e.code, e.data])).toEqual([
      ["o", "12345"],
      ["m", "output past 10 bytes is not recorded"],
      ["i", "secret-typed\r"],
    ]);
    await ctx.store.terminals.complete(id, {
      outcome: "exited",
      channelId: 1,
      exitCode: 0,
      exitReason: "exited",
      signal: null,
      durationMs: 5,
      inputBytes: 13,
      outputBytes: 19,
      recordingTruncated: true,
    });
    await ctx.testDb.db.query("UPDATE terminal_audit SET at = now() - interval '100 days' WHERE id = $1", [id]);
    expect(await ctx.store.terminals.sweep(90 * 86_400_000)).toBeGreaterThanOrEqual(1);
    expect(await ctx.store.terminals.get(id)).toBeUndefined();
    const { rows } = await ctx.testDb.db.query<{ n: number }>("SELECT count(*) AS n FROM terminal_recording_chunks WHERE recording_id = $1", [id]);
    expect(rows[0].n).toBe(0);
  });
});
