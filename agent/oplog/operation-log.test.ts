import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import { createOperationLog, type OperationLogEntry } from "./operation-log.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "guru-oplog-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const entry = (n: number, extra: Partial<OperationLogEntry> = {}): OperationLogEntry => ({
  technicianId: "tech-1",
  sessionId: "sess-1",
  operation: "exec",
  detail: { command: `echo ${n}`, n },
  result: "exited 0",
  ...extra,
});

async function lines(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

describe("createOperationLog", () => {
  it("appends one JSON line per entry with who, what, when and result", async () => {
    const file = join(dir, "nested", "ops.jsonl");
    const log = createOperationLog({ file, maxBytes: 1024 * 1024, maxFiles: 3, logger: silentLogger() });
    const at = new Date("2025-03-01T10:00:00.000Z");
    await log.record(entry(1, { at }));
    await log.record(entry(2, { operation: "exec", result: 'denied: rule "rm *"' }));
    await log.close();
    const [first, second] = await lines(file);
    expect(first).toEqual({
      at: "2025-03-01T10:00:00.000Z",
      technicianId: "tech-1",
      sessionId: "sess-1",
      operation: "exec",
      result: "exited 0",
      detail: { command: "echo 1", n: 1 },
    });
    expect(second.result).toBe('denied: rule "rm *"');
    expect(typeof second.at).toBe("string");
  });

  it("serialises concurrent writes: no interleaving, no loss", async () => {
    const file = join(dir, "ops.jsonl");
    const log = createOperationLog({ file, maxBytes: 100 * 1024 * 1024, maxFiles: 2, logger: silentLogger() });
    const big = "x".repeat(20_000);
    await Promise.all(Array.from({ length: 200 }, (_, n) => log.record(entry(n, { detail: { n, big } }))));
    await log.close();
    const all = await lines(file);
    expect(all.map((e) => (e.detail as { n: number }).n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
  });

  it("rotates by size and keeps maxFiles files", async () => {
    const file = join(dir, "ops.jsonl");
    const log = createOperationLog({ file, maxBytes: 1000, maxFiles: 3, logger: silentLogger() });
    for (let n = 0; n < 60; n++) await log.record(entry(n));
    await log.close();
    expect((await readdir(dir)).sort()).toEqual(["ops.jsonl", "ops.jsonl.1", "ops.jsonl.2"]);
    const kept = [...(await lines(`${file}.2`)), ...(await lines(`${file}.1`)), ...(await lines(file))];
    const ns = kept.map((e) => (e.detail as { n: number }).n);
    // The newest entries, in order, without a gap; the oldest were dropped.
    expect(ns.at(-1)).toBe(59);
    expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => 60 - ns.length + i));
    expect(ns.length).toBeLessThan(60);
    for (const f of [file, `${file}.1`, `${file}.2`]) expect((await readFile(f)).length).toBeLessThanOrEqual(1000);
  });

  it("continues the size count of an existing file after a restart", async () => {
    const file = join(dir, "ops.jsonl");
    const first = createOperationLog({ file, maxBytes: 600, maxFiles: 2, logger: silentLogger() });
    for (let n = 0; n < 4; n++) await first.record(entry(n));
    await first.close();
    const second = createOperationLog({ file, maxBytes: 600, maxFiles: 2, logger: silentLogger() });
    for (let n = 4; n < 8; n++) await second.record(entry(n));
    await second.close();
    expect((await readFile(file)).length).toBeLessThanOrEqual(600);
    expect((await lines(`${file}.1`)).length).toBeGreaterThan(0);
  });

  it("shortens an oversized entry instead of dropping it", async () => {
    const file = join(dir, "ops.jsonl");
    const log = createOperationLog({ file, maxBytes: 1024 * 1024, maxFiles: 2, maxEntryBytes: 4096, logger: silentLogger() });
    await log.record(entry(1, { detail: { command: "y".repeat(100_000), n: 1 } }));
    await log.close();
    const [e] = await lines(file);
    expect((await readFile(file)).length).toBeLessThanOrEqual(4096);
    expect(e.detail).toMatchObject({ n: 1, shortened: true });
    expect((e.detail as { command: string }).command).toMatch(/^y{1024}…\[98976 more characters\]$/);
  });

  it("keeps the entry when its detail cannot be serialised", async () => {
    const file = join(dir, "ops.jsonl");
    const log = createOperationLog({ file, maxBytes: 1024 * 1024, maxFiles: 2, logger: silentLogger() });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await log.record(entry(1, { detail: cyclic }));
    await log.close();
    expect((await lines(file))[0]).toMatchObject({ operation: "exec", detail: { unserializable: true } });
  });

  it("never throws on a write failure: warns and recovers", async () => {
    const warnings: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
    const file = join(dir, "ops.jsonl");
    await mkdir(file); // a directory where the file should be: open fails (EISDIR), even as root
    const log = createOperationLog({ file, maxBytes: 1024, maxFiles: 2, logger });
    await expect(log.record(entry(1))).resolves.toBeUndefined();
    expect(warnings).toContain("could not write the operation log");
    await rm(file, { recursive: true });
    await log.record(entry(2));
    await log.close();
    expect((await lines(file)).map((e) => (e.detail as { n: number }).n)).toEqual([2]);
  });

  it("drops entries after close with a warning", async () => {
    const file = join(dir, "ops.jsonl");
    const log = createOperationLog({ file, maxBytes: 1024, maxFiles: 1, logger: silentLogger() });
    await log.record(entry(1));
    await log.close();
    await expect(log.record(entry(2))).resolves.toBeUndefined();
    expect(await lines(file)).toHaveLength(1);
  });
});
