// `guru cp` and `guru ls` as child processes against a test server and a real agent.
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { sha256OfFile } from "../../lib/file-transfer.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { spawnGuru } from "../support/server-process.ts";

const MiB = 1024 * 1024;

async function runGuru(t: TestServer, args: string[], env: Record<string, string> = {}) {
  const p = spawnGuru(args, { GURU_URL: t.url, GURU_TOKEN: t.adminToken, GURU_CLI_STATE_DIR: join(t.tempDir, "cli-state"), ...env });
  const code = await new Promise<number | null>((resolve) => p.child.once("exit", (c) => resolve(c)));
  // Let the pipes drain.
  await new Promise((r) => setImmediate(r));
  return { code, output: p.output() };
}

describeDatabases("guru cp and ls", (kind) => {
  let t: TestServer;
  let root: string;
  beforeAll(async () => {
    t = await startTestServer({ kind });
    root = await mkdtemp(join(t.tempDir, "allowed-"));
    await t.startAgent(`cli-box-${kind}`, { allow: [root] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("copies 100 MiB to and from the agent with progress, bytes identical", { timeout: 120_000 }, async () => {
    const local = join(t.tempDir, "payload.bin");
    const piece = Buffer.alloc(MiB);
    const parts: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      piece.fill(i);
      piece.writeUInt32BE((i * 2654435761) >>> 0, 100);
      parts.push(Buffer.from(piece));
    }
    await writeFile(local, Buffer.concat(parts));
    const expected = await sha256OfFile(local);

    const up = await runGuru(t, ["cp", local, `cli-box-${kind}:payload.bin`]);
    expect(up.code, up.output).toBe(0);
    expect(up.output).toMatch(/upload +\d+%.*MiB of 100\.0 MiB.*\/s +ETA/);
    expect(up.output).toMatch(/upload 100%/);
    expect(up.output).toContain(`sha256 ${expected}`);
    expect(await sha256OfFile(join(root, "payload.bin"))).toBe(expected);

    const back = join(t.tempDir, "payload-back.bin");
    const down = await runGuru(t, ["cp", `cli-box-${kind}:payload.bin`, back]);
    expect(down.code, down.output).toBe(0);
    expect(down.output).toMatch(/download 100%/);
    expect(await sha256OfFile(back)).toBe(expected);

    // The tunnels cp opened are closed again.
    const { sessions } = await t.admin.sessions.listSessions({ status: SessionStatus.ACTIVE });
    expect(sessions).toEqual([]);
  });

  it("continues a partial download with --resume, lists, and exits non-zero on failure", async () => {
    const data = Buffer.from("0123456789".repeat(100_000));
    await writeFile(join(root, "notes.txt"), data);
    const local = join(t.tempDir, "notes.txt");
    await writeFile(`${local}.guru-part`, data.subarray(0, 400_000));
    const resumed = await runGuru(t, ["cp", "--resume", `cli-box-${kind}:notes.txt`, local]);
    expect(resumed.code, resumed.output).toBe(0);
    expect((await readFile(local)).equals(data)).toBe(true);

    const ls = await runGuru(t, ["ls", `cli-box-${kind}:.`]);
    expect(ls.code, ls.output).toBe(0);
    expect(ls.output).toMatch(/-0\d{3} +1000000 .* notes\.txt/);

    const refused = await runGuru(t, ["cp", local, `cli-box-${kind}:/etc/guru-planted`]);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain("outside the allowed paths");
    const missing = await runGuru(t, ["cp", `cli-box-${kind}:nope.bin`, `${local}.x`]);
    expect(missing.code).toBe(1);
    const usage = await runGuru(t, ["cp", local, local]);
    expect(usage.code).not.toBe(0);
  });

  it("replaces a file keeping a backup, or none with --no-backup", async () => {
    await writeFile(join(root, "app.conf"), "v1\n");
    const local = join(t.tempDir, "app.conf");
    await writeFile(local, "v2\n");
    const kept = await runGuru(t, ["cp", "--json", local, `cli-box-${kind}:app.conf`]);
    expect(kept.code, kept.output).toBe(0);
    const keptPath = (JSON.parse(kept.output.trim().split("\n").at(-1)!) as { backupPath: string }).backupPath;
    expect(await readFile(keptPath, "utf8")).toBe("v1\n");
    await writeFile(local, "v3\n");
    const plain = await runGuru(t, ["cp", "--json", "--no-backup", local, `cli-box-${kind}:app.conf`]);
    expect(plain.code, plain.output).toBe(0);
    expect(JSON.parse(plain.output.trim().split("\n").at(-1)!)).toMatchObject({ backupPath: "" });
    expect(await readFile(join(root, "app.conf"), "utf8")).toBe("v3\n");
    expect((await readdir(root)).filter((n) => n.startsWith("app.conf.guru-backup-"))).toHaveLength(1);
  });

  it("continues an interrupted upload with --resume", { timeout: 120_000 }, async () => {
    const local = join(t.tempDir, "interrupted.bin");
    await writeFile(local, Buffer.alloc(96 * MiB, 0x5a));
    const env = { GURU_URL: t.url, GURU_TOKEN: t.adminToken, GURU_CLI_STATE_DIR: join(t.tempDir, "cli-state") };
    const first = spawnGuru(["cp", local, `cli-box-${kind}:interrupted.bin`], env);
    await first.waitFor(/upload +[1-9]\d%/);
    await first.stop("SIGKILL");
    const resumed = await runGuru(t, ["cp", "--resume", local, `cli-box-${kind}:interrupted.bin`]);
    expect(resumed.code, resumed.output).toBe(0);
    // The resumed run starts where the agent stood, not at 0 %.
    expect(resumed.output.split("\n")[0]).toMatch(/upload +[1-9]\d%/);
    expect(await sha256OfFile(join(root, "interrupted.bin"))).toBe(await sha256OfFile(local));
  });
});
