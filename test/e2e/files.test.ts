// Files end to end: a real server, real `guru agent` processes, real files on
// disk, real Connect clients; both databases.
import { createHash, randomBytes } from "node:crypto";
import { closeSync, createWriteStream, openSync, utimesSync, writeSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FileType, UploadStatus, type ReadFileInfo, type ReadFileSummary } from "../../gen/guru/api/v1/files_pb.js";
import { downloadFile, sha256OfFile, uploadFile } from "../../lib/file-transfer.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";
import { errorOf } from "../support/rpc-errors.ts";

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A file of pseudo-random bytes written in 1 MiB pieces (memory stays small). */
async function bigFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const piece = randomBytes(MiB);
  for (let done = 0; done < bytes; ) {
    const n = Math.min(MiB, bytes - done);
    piece[0] = done & 0xff; // no two pieces alike
    piece[1] = (done >> 20) & 0xff;
    if (!out.write(piece.subarray(0, n))) await new Promise<void>((r) => out.once("drain", () => r()));
    done += n;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function collect(t: TestServer, sessionId: string, path: string, offset = 0, length = 0) {
  const chunks: Uint8Array[] = [];
  let info: ReadFileInfo | undefined;
  let summary: ReadFileSummary | undefined;
  for await (const res of t.admin.files.readFile({ sessionId, path, offset: BigInt(offset), length: BigInt(length) })) {
    if (res.event.case === "info") info = res.event.value;
    else if (res.event.case === "chunk") chunks.push(res.event.value.data);
    else if (res.event.case === "summary") summary = res.event.value;
  }
  return { info, summary, data: Buffer.concat(chunks) };
}

describeDatabases("files", (kind) => {
  let t: TestServer;
  let agent: AgentProcess;
  let sessionId: string;
  let root: string;
  let outside: string;
  beforeAll(async () => {
    t = await startTestServer({ kind });
    root = await mkdtemp(join(t.tempDir, "allowed-"));
    outside = await mkdtemp(join(t.tempDir, "outside-"));
    agent = await t.startAgent(`files-${kind}`, { allow: [root] });
    sessionId = (await t.admin.sessions.openTunnel({ agentId: agent.agentId })).sessionId;
  });
  afterAll(async () => {
    await t?.close();
  });
  const session = async () => sessionId;

  it("round-trips empty, 1-byte and chunk-boundary files, SHA-256 compared", async () => {
    const sizes = [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 8 * MiB, 8 * MiB + 1, 2 * 8 * MiB - 1];
    for (const size of sizes) {
      const local = join(t.tempDir, `src-${size}`);
      const bytes = randomBytes(size);
      await writeFile(local, bytes);
      const up = await uploadFile({ api: t.admin, session, localPath: local, remotePath: `rt-${size}.bin` });
      expect(up).toMatchObject({ size, sha256: sha(bytes), backupPath: "" });
      expect(sha(await readFile(join(root, `rt-${size}.bin`)))).toBe(sha(bytes));
      const back = join(t.tempDir, `back-${size}`);
      const down = await downloadFile({ api: t.admin, session, remotePath: `rt-${size}.bin`, localPath: back });
      expect(down.rangeSha256).toBe(sha(bytes));
      expect(sha(await readFile(back))).toBe(sha(bytes));
    }
    // No temp files or records left beside the targets.
    expect((await readdir(root)).filter((n) => n.includes(".guru-upload-"))).toEqual([]);
  });

  it("round-trips a 200 MiB file byte-identical", { timeout: 120_000 }, async () => {
    const local = join(t.tempDir, "big.bin");
    await bigFile(local, 200 * MiB);
    const expected = await sha256OfFile(local);
    const up = await uploadFile({ api: t.admin, session, localPath: local, remotePath: "big.bin", sha256: expected });
    expect(up.sha256).toBe(expected);
    expect(await sha256OfFile(join(root, "big.bin"))).toBe(expected);
    const back = join(t.tempDir, "big-back.bin");
    await downloadFile({ api: t.admin, session, remotePath: "big.bin", localPath: back });
    expect(await sha256OfFile(back)).toBe(expected);
    const rows = await t.server.store.audit.listFiles({ sessionId, limit: 20 });
    const upload = rows.find((r) => r.operation === "upload" && r.path === "big.bin");
    const download = rows.find((r) => r.operation === "read" && r.path === "big.bin");
    expect(upload).toMatchObject({ direction: "upload", bytes: 200 * MiB, sha256: expected, outcome: "allowed", agentId: agent.agentId });
    expect(download).toMatchObject({ direction: "download", bytes: 200 * MiB, sha256: expected, outcome: "allowed" });
    expect(upload!.durationMs).toBeGreaterThan(0);
    await rm(local);
    await rm(back);
    await rm(join(root, "big.bin"));
  });

  it("resumes a download from an offset, and reads a range", async () => {
    const bytes = randomBytes(3 * MiB + 17);
    await writeFile(join(root, "resume.bin"), bytes);
    const tail = await collect(t, sessionId, "resume.bin", MiB + 5);
    expect(tail.info?.size).toBe(BigInt(bytes.length));
    expect(tail.data.equals(bytes.subarray(MiB + 5))).toBe(true);
    expect(tail.summary).toMatchObject({ bytesSent: BigInt(bytes.length - MiB - 5), sha256: sha(bytes.subarray(MiB + 5)) });
    const range = await collect(t, sessionId, "resume.bin", 10, 1000);
    expect(range.data.equals(bytes.subarray(10, 1010))).toBe(true);
    // The CLI's way: a partial file on disk continues from its length.
    const local = join(t.tempDir, "resumed.bin");
    await writeFile(`${local}.guru-part`, bytes.subarray(0, 2 * MiB + 3));
    const down = await downloadFile({ api: t.admin, session, remotePath: "resume.bin", localPath: local, resume: true });
    expect(down.resumedFrom).toBe(2 * MiB + 3);
    expect((await readFile(local)).equals(bytes)).toBe(true);
    const beyond = await errorOf(collect(t, sessionId, "resume.bin", bytes.length + 1));
    expect(beyond.code).toBe(Code.InvalidArgument);
  });

  it("keeps a backup when replacing, and refuses to replace without overwrite", async () => {
    await writeFile(join(root, "conf.ini"), "old=1\n");
    const local = join(t.tempDir, "conf.ini");
    await writeFile(local, "new=2\n");
    const refused = await errorOf(uploadFile({ api: t.admin, session, localPath: local, remotePath: "conf.ini" }));
    expect(refused.code).toBe(Code.AlreadyExists);
    const up = await uploadFile({ api: t.admin, session, localPath: local, remotePath: "conf.ini", overwrite: true });
    expect(up.backupPath).toMatch(/conf\.ini\.guru-backup-/);
    expect(await readFile(up.backupPath, "utf8")).toBe("old=1\n");
    expect(await readFile(join(root, "conf.ini"), "utf8")).toBe("new=2\n");
    // keep_backup false: replaced, and nothing left beside it.
    const before = (await readdir(root)).filter((n) => n.startsWith("conf.ini.guru-backup-"));
    await writeFile(local, "newer=3\n");
    const plain = await uploadFile({ api: t.admin, session, localPath: local, remotePath: "conf.ini", overwrite: true, keepBackup: false });
    expect(plain.backupPath).toBe("");
    expect(await readFile(join(root, "conf.ini"), "utf8")).toBe("newer=3\n");
    expect((await readdir(root)).filter((n) => n.startsWith("conf.ini.guru-backup-"))).toEqual(before);
    // keep_backup true keeps one again, and the choice survives in the upload's record.
    await writeFile(local, "newest=4\n");
    const kept = await uploadFile({ api: t.admin, session, localPath: local, remotePath: "conf.ini", overwrite: true, keepBackup: true });
    expect(await readFile(kept.backupPath, "utf8")).toBe("newer=3\n");
    expect((await t.server.store.uploads.get(kept.uploadId))?.keepBackup).toBe(true);
  });

  it("fails a wrong SHA-256 with DataLoss and replaces nothing", async () => {
    await writeFile(join(root, "keep.txt"), "original\n");
    const data = Buffer.from("tampered\n");
    const { uploadId } = await t.admin.files.startUpload({
      sessionId,
      path: "keep.txt",
      size: BigInt(data.length),
      sha256: sha(Buffer.from("something else")),
      overwrite: true,
    });
    await t.admin.files.uploadChunk({ uploadId, offset: 0n, data });
    const finished = await errorOf(t.admin.files.finishUpload({ uploadId }));
    expect(finished.code).toBe(Code.DataLoss);
    expect(finished.message).toContain("SHA-256 mismatch");
    expect(await readFile(join(root, "keep.txt"), "utf8")).toBe("original\n");
    expect((await readdir(root)).filter((n) => n.startsWith(".keep.txt") || n.startsWith("keep.txt.guru-backup"))).toEqual([]);
    expect((await t.admin.files.getUpload({ uploadId })).status).toBe(UploadStatus.FAILED);
    const rows = await t.server.store.audit.listFiles({ sessionId });
    expect(rows.find((r) => r.operation === "upload" && r.path === "keep.txt")).toMatchObject({ outcome: "failed", direction: "upload" });
    // Bad declarations are refused before anything is opened.
    expect((await errorOf(t.admin.files.startUpload({ sessionId, path: "x", size: 1n, sha256: "abc" }))).code).toBe(Code.InvalidArgument);
    // A chunk past a gap names the offset expected.
    const gap = await t.admin.files.startUpload({ sessionId, path: "gap.bin", size: 100n, sha256: sha(Buffer.alloc(100)) });
    const skipped = await errorOf(t.admin.files.uploadChunk({ uploadId: gap.uploadId, offset: 50n, data: Buffer.alloc(50) }));
    expect(skipped.code).toBe(Code.FailedPrecondition);
    expect(skipped.message).toContain("expected offset 0");
    const early = await errorOf(t.admin.files.finishUpload({ uploadId: gap.uploadId }));
    expect(early.code).toBe(Code.FailedPrecondition);
    await t.admin.files.abortUpload({ uploadId: gap.uploadId });
    expect((await t.admin.files.getUpload({ uploadId: gap.uploadId })).status).toBe(UploadStatus.ABORTED);
    await waitFor(async () => !(await readdir(root)).some((n) => n.includes("gap.bin")), 2000, "partial removed");
  });

  it("takes the SHA-256 at finish when the start had none, and checks it just as strictly", async () => {
    const data = randomBytes(3 * MiB + 5);
    const start = (path: string, sha256 = "") => t.admin.files.startUpload({ sessionId, path, size: BigInt(data.length), sha256, overwrite: true });

    const late = await start("late.bin");
    await t.admin.files.uploadChunk({ uploadId: late.uploadId, offset: 0n, data });
    // Neither at the start nor at finish: refused, and the bytes stay for a finish that has it.
    const missing = await errorOf(t.admin.files.finishUpload({ uploadId: late.uploadId }));
    expect(missing).toMatchObject({ code: Code.InvalidArgument, metadata: { field: "sha256" } });
    expect(missing.message).toContain("must carry");
    expect((await t.admin.files.getUpload({ uploadId: late.uploadId })).status).toBe(UploadStatus.ACTIVE);
    const done = await t.admin.files.finishUpload({ uploadId: late.uploadId, sha256: sha(data).toUpperCase() });
    expect(done).toMatchObject({ size: BigInt(data.length), sha256: sha(data) });
    expect(sha(await readFile(join(root, "late.bin")))).toBe(sha(data));
    // A finish retried after a lost answer gets the same answer.
    expect((await t.admin.files.finishUpload({ uploadId: late.uploadId, sha256: sha(data) })).sha256).toBe(sha(data));

    // A wrong hash at finish is caught by the agent like a wrong declared one: nothing replaced.
    const wrong = await start("late.bin");
    await t.admin.files.uploadChunk({ uploadId: wrong.uploadId, offset: 0n, data: randomBytes(data.length) });
    const mismatch = await errorOf(t.admin.files.finishUpload({ uploadId: wrong.uploadId, sha256: sha(data) }));
    expect(mismatch).toMatchObject({ code: Code.DataLoss, reason: "UPLOAD_CHECKSUM_MISMATCH", metadata: { expectedSha256: sha(data) } });
    expect(sha(await readFile(join(root, "late.bin")))).toBe(sha(data));
    expect((await t.admin.files.getUpload({ uploadId: wrong.uploadId })).status).toBe(UploadStatus.FAILED);

    // Declared at the start and different at finish: refused before the agent is asked; still active.
    const declared = await start("declared.bin", sha(data));
    await t.admin.files.uploadChunk({ uploadId: declared.uploadId, offset: 0n, data });
    const differs = await errorOf(t.admin.files.finishUpload({ uploadId: declared.uploadId, sha256: "0".repeat(64) }));
    expect(differs).toMatchObject({ code: Code.InvalidArgument, metadata: { field: "sha256" } });
    expect((await t.admin.files.getUpload({ uploadId: declared.uploadId })).status).toBe(UploadStatus.ACTIVE);
    expect((await t.admin.files.finishUpload({ uploadId: declared.uploadId, sha256: sha(data) })).sha256).toBe(sha(data));
  });

  it("asks an agent that does not take the hash at finish for it at the start, and the client then hashes first", async () => {
    const row = (await t.server.store.agents.get(agent.agentId))!;
    // What an agent older than Hello.features reports: no wire features.
    const inventory = { hostname: row.hostname ?? "", os: row.os ?? "", osRelease: row.osRelease ?? "", arch: row.arch ?? "", agentVersion: "0.3.0" };
    await t.server.store.agents.markOnline(agent.agentId, { ...inventory, capabilities: row.capabilities, wireFeatures: [] });
    try {
      const refused = await errorOf(t.admin.files.startUpload({ sessionId, path: "old.bin", size: 1n, sha256: "" }));
      expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "AGENT_NEEDS_SHA256_AT_START", metadata: { agentId: agent.agentId } });
      expect(refused.message).toContain("version 0.3.0");
      const local = join(t.tempDir, "old-agent.bin");
      const data = randomBytes(2 * MiB + 3);
      await writeFile(local, data);
      const up = await uploadFile({ api: t.admin, session, localPath: local, remotePath: "old.bin" });
      expect(up.sha256).toBe(sha(data));
      expect(sha(await readFile(join(root, "old.bin")))).toBe(sha(data));
    } finally {
      await t.server.store.agents.markOnline(agent.agentId, {
        ...inventory,
        agentVersion: row.agentVersion ?? "",
        capabilities: row.capabilities,
        wireFeatures: row.wireFeatures,
      });
    }
  });

  it("refuses to finish an upload whose local file changed while it was sent", async () => {
    const local = join(t.tempDir, "changing.bin");
    await bigFile(local, 24 * MiB);
    await writeFile(join(root, "changing.bin"), "before\n");
    let touched = false;
    const failure = await uploadFile({
      api: t.admin,
      session,
      localPath: local,
      remotePath: "changing.bin",
      overwrite: true,
      onProgress: ({ done }) => {
        if (done > 0 && !touched) {
          touched = true;
          // Same size, new content and time: only the modification time can tell.
          const fd = openSync(local, "r+");
          writeSync(fd, Buffer.from("changed"), 0, 7, 0);
          closeSync(fd);
          utimesSync(local, new Date(), new Date(Date.now() + 5000));
        }
      },
    }).catch((err: unknown) => err as Error);
    expect(touched).toBe(true);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toContain("changed while being uploaded");
    expect(await readFile(join(root, "changing.bin"), "utf8")).toBe("before\n");
  });

  it("refuses traversal, absolute paths outside and symlinks out, writing nothing", async () => {
    await writeFile(join(outside, "secret.txt"), "secret\n");
    await symlink(outside, join(root, "escape"));
    const tries = [`../${outside.split("/").at(-1)}/secret.txt`, join(outside, "secret.txt"), "escape/secret.txt", "/etc/passwd"];
    for (const path of tries) {
      for (const call of [
        () => t.admin.files.stat({ sessionId, path }),
        () => collect(t, sessionId, path),
        () => t.admin.files.listDirectory({ sessionId, path: path.replace(/secret\.txt$/, "") }),
        () =>
          t.admin.files.startUpload({ sessionId, path: path.replace("secret.txt", "planted.txt"), size: 1n, sha256: sha(Buffer.from("x")), overwrite: true }),
      ]) {
        const refused = await errorOf(call());
        expect(refused.code, `${path}: ${refused.message}`).toBe(Code.PermissionDenied);
        expect(refused.message).toContain("outside the allowed paths");
      }
    }
    expect(await readdir(outside)).toEqual(["secret.txt"]);
    const rows = await t.server.store.audit.listFiles({ sessionId, limit: 100 });
    expect(rows.filter((r) => r.outcome === "refused").length).toBeGreaterThanOrEqual(tries.length * 4);
  });

  it("lists 10,000 entries in pages", async () => {
    const dir = join(root, "many");
    await mkdir(dir);
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => writeFile(join(dir, `f${String(i).padStart(5, "0")}`), "")));
    const names: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await t.admin.files.listDirectory({ sessionId, path: "many", pageSize: 1500, pageToken });
      expect(page.totalEntries).toBe(10_000);
      names.push(...page.entries.map((e) => e.name));
      expect(page.entries.every((e) => e.type === FileType.FILE)).toBe(true);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(pages).toBe(7);
    expect(new Set(names).size).toBe(10_000);
    expect(names[0]).toBe("f00000");
    expect((await errorOf(t.admin.files.listDirectory({ sessionId, path: "many", pageToken: "bogus" }))).code).toBe(Code.InvalidArgument);
  });

  it("detects MIME types by content", async () => {
    const png = Buffer.from(
      "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4e10000000049454e44ae426082",
      "hex",
    );
    await writeFile(join(root, "picture.dat"), png);
    await writeFile(join(root, "notes"), "plain words\n");
    await writeFile(join(root, "blob"), Buffer.from([0, 1, 2, 3, 255, 0, 7]));
    expect((await t.admin.files.stat({ sessionId, path: "picture.dat" })).mimeType).toBe("image/png");
    expect((await t.admin.files.stat({ sessionId, path: "notes" })).mimeType).toBe("text/plain");
    expect((await t.admin.files.stat({ sessionId, path: "blob" })).mimeType).toBe("application/octet-stream");
    const dir = await t.admin.files.stat({ sessionId, path: "." });
    expect(dir.entry?.type).toBe(FileType.DIR);
    expect((await collect(t, sessionId, "picture.dat")).info?.mimeType).toBe("image/png");
    expect((await errorOf(t.admin.files.stat({ sessionId, path: "missing" }))).code).toBe(Code.NotFound);
  });

  it("needs the caller's own active tunnel", async () => {
    const other = await t.createTech(`intruder-${kind}`);
    expect((await errorOf(other.api.files.stat({ sessionId, path: "notes" }))).code).toBe(Code.PermissionDenied);
    const { uploadId } = await t.admin.files.startUpload({ sessionId, path: "owned.bin", size: 1n, sha256: sha(Buffer.from("x")) });
    expect((await errorOf(other.api.files.uploadChunk({ uploadId, offset: 0n, data: Buffer.from("x") }))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(other.api.files.getUpload({ uploadId }))).code).toBe(Code.PermissionDenied);
    await t.admin.files.abortUpload({ uploadId });
  });
});

describeDatabases("files across reconnects", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    // A fixed port, so that agents find the server again after a restart.
    t = await startTestServer({ kind, config: { port: await freePort() } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("resumes an upload interrupted by killing the agent, in a new tunnel, byte-identical", { timeout: 90_000 }, async () => {
    const root = await mkdtemp(join(t.tempDir, "allowed-"));
    const stateDir = await mkdtemp(join(t.tempDir, "state-"));
    const { agentId, agentKey } = await t.enrollAgent(`phoenix-${kind}`);
    let agent = await t.spawnAgent({ agentId, agentKey, allow: [root], stateDir });
    await agent.waitOnline();
    const local = join(t.tempDir, "interrupted.bin");
    await bigFile(local, 48 * MiB);
    const expected = await sha256OfFile(local);
    const first = await t.admin.sessions.openTunnel({ agentId });
    const { uploadId } = await t.admin.files.startUpload({ sessionId: first.sessionId, path: "interrupted.bin", size: BigInt(48 * MiB), sha256: expected });
    const bytes = await readFile(local);
    for (let offset = 0; offset < 24 * MiB; offset += 4 * MiB) {
      await t.admin.files.uploadChunk({ uploadId, offset: BigInt(offset), data: bytes.subarray(offset, offset + 4 * MiB) });
    }
    agent.child.kill("SIGKILL");
    await waitFor(() => !t.server.router.isOnline(agentId), 5000, "agent offline");
    const offline = await errorOf(t.admin.files.uploadChunk({ uploadId, offset: BigInt(24 * MiB), data: bytes.subarray(24 * MiB, 28 * MiB) }));
    expect([Code.FailedPrecondition, Code.Unavailable]).toContain(offline.code);
    expect(offline.message).toMatch(/open a tunnel to phoenix|offline|disconnected|closed/);

    agent = await t.spawnAgent({ agentId, agentKey, allow: [root], stateDir });
    await agent.waitOnline();
    const second = await t.admin.sessions.openTunnel({ agentId });
    expect(second.sessionId).not.toBe(first.sessionId);
    const status = await t.admin.files.getUpload({ uploadId });
    expect(status.status).toBe(UploadStatus.ACTIVE);
    const resumeAt = Number(status.committedOffset);
    expect(resumeAt).toBeGreaterThan(0);
    expect(resumeAt).toBeLessThanOrEqual(24 * MiB);
    const done = await uploadFile({
      api: t.admin,
      session: async () => second.sessionId,
      localPath: local,
      remotePath: "interrupted.bin",
      uploadId,
      sha256: expected,
    });
    expect(done.sha256).toBe(expected);
    expect(await sha256OfFile(join(root, "interrupted.bin"))).toBe(expected);
    expect((await readdir(root)).sort()).toEqual(["interrupted.bin"]);
    await agent.stop();
  });

  it("resumes an upload after a server restart", { timeout: 90_000 }, async () => {
    const root = await mkdtemp(join(t.tempDir, "allowed-"));
    const agent = await t.startAgent(`steady-${kind}`, { allow: [root] });
    const data = randomBytes(6 * MiB);
    const { sessionId } = await t.admin.sessions.openTunnel({ agentId: agent.agentId });
    const { uploadId } = await t.admin.files.startUpload({ sessionId, path: "restart.bin", size: BigInt(data.length), sha256: sha(data) });
    await t.admin.files.uploadChunk({ uploadId, offset: 0n, data: data.subarray(0, 4 * MiB) });
    await waitFor(async () => (await t.admin.files.getUpload({ uploadId })).committedOffset === BigInt(4 * MiB), 5000, "4 MiB committed");
    await t.stopServer();
    const row = (await t.server.store.uploads.get(uploadId))!;
    expect(row).toMatchObject({ status: "active", committedOffset: 4 * MiB });
    await t.restart();
    // Same port: the agent process reconnects by itself.
    await agent.waitOnline(15_000);
    const second = await t.admin.sessions.openTunnel({ agentId: agent.agentId });
    const local = join(t.tempDir, "restart-src.bin");
    await writeFile(local, data);
    const done = await uploadFile({ api: t.admin, session: async () => second.sessionId, localPath: local, remotePath: "restart.bin", uploadId });
    expect(done.sha256).toBe(sha(data));
    expect((await readFile(join(root, "restart.bin"))).equals(data)).toBe(true);
  });

  it("aborts abandoned partial uploads", async () => {
    const root = await mkdtemp(join(t.tempDir, "allowed-"));
    const agent = await t.startAgent(`idle-${kind}`, { allow: [root] });
    const { sessionId } = await t.admin.sessions.openTunnel({ agentId: agent.agentId });
    const { uploadId } = await t.admin.files.startUpload({ sessionId, path: "left.bin", size: 10n, sha256: sha(Buffer.alloc(10)) });
    await t.admin.files.uploadChunk({ uploadId, offset: 0n, data: Buffer.alloc(5) });
    await t.server.store.db.query("UPDATE uploads SET updated_at = now() - interval '2 days' WHERE id = $1", [uploadId]);
    expect(await t.server.uploads.sweepAbandoned()).toBe(1);
    expect((await t.admin.files.getUpload({ uploadId })).status).toBe(UploadStatus.ABORTED);
    await waitFor(async () => (await readdir(root)).length === 0, 3000, "partial removed on the agent");
    const rows = await t.server.store.audit.listFiles({ agentId: agent.agentId });
    expect(rows[0]).toMatchObject({ operation: "upload", outcome: "failed", error: expect.stringContaining("abandoned") });
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
