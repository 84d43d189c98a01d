// Uploads through the Connect API to a real agent process: placed content
// never carries setuid/setgid, and one rule for a short upload on server and
// agent (bytes kept, upload active, resumable to a byte-identical file).
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { UploadStatus } from "../../gen/guru/api/v1/files_pb.js";
import { uploadFile } from "../../lib/file-transfer.ts";
import { tempPathFor } from "../../agent/files/upload-state.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";
import { errorOf } from "../support/rpc-errors.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;

describeDatabases("upload safety", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function put(sessionId: string, path: string, data: Uint8Array, overwrite: boolean) {
    const { uploadId } = await t.admin.files.startUpload({ sessionId, path, size: BigInt(data.length), sha256: sha(data), overwrite });
    await t.admin.files.uploadChunk({ uploadId, offset: 0n, data });
    return t.admin.files.finishUpload({ uploadId });
  }

  it("an upload over a setuid or setgid file keeps its permission bits without them; a new file is 0644", async () => {
    const root = await mkdtemp(join(t.tempDir, "allowed-"));
    const agent = await t.startAgent(`modes-${kind}`, { allow: [root] });
    const { sessionId } = await t.admin.sessions.openTunnel({ agentId: agent.agentId });
    const suid = join(root, "suid-tool");
    await writeFile(suid, "#!/bin/sh\necho old\n");
    await chmod(suid, 0o4755);
    const sgid = join(root, "sgid-tool");
    await writeFile(sgid, "old");
    await chmod(sgid, 0o2750);

    const content = Buffer.from("#!/bin/sh\necho the technician's content\n");
    const replaced = await put(sessionId, "suid-tool", content, true);
    expect((await readFile(suid)).equals(content)).toBe(true);
    expect(await modeOf(suid)).toBe(0o755);
    // The old setuid file lives on as the backup: not as a setuid program.
    expect(await readFile(replaced.backupPath, "utf8")).toBe("#!/bin/sh\necho old\n");
    expect(await modeOf(replaced.backupPath)).toBe(0o755);

    await put(sessionId, "sgid-tool", content, true);
    expect(await modeOf(sgid)).toBe(0o750);

    // A new file: 0644 less the umask the agent was started with (022 here), never the temp file's 0600.
    await put(sessionId, "new-tool", content, false);
    expect(await modeOf(join(root, "new-tool"))).toBe(0o644);
    await agent.stop();
  });

  it("a short upload stays active with its bytes on both sides and finishes byte-identical after the rest is sent", { timeout: 60_000 }, async () => {
    const root = await mkdtemp(join(t.tempDir, "allowed-"));
    const stateDir = await mkdtemp(join(t.tempDir, "state-"));
    const { agentId, agentKey } = await t.enrollAgent(`short-${kind}`);
    let agent = await t.spawnAgent({ agentId, agentKey, allow: [root], stateDir });
    await agent.waitOnline();
    let { sessionId } = await t.admin.sessions.openTunnel({ agentId });
    const data = randomBytes(3 * 1024 * 1024);
    const { uploadId } = await t.admin.files.startUpload({ sessionId, path: "short.bin", size: BigInt(data.length), sha256: sha(data) });

    // Short as the server sees it: FinishUpload before all bytes were sent.
    await t.admin.files.uploadChunk({ uploadId, offset: 0n, data: data.subarray(0, 1024 * 1024) });
    const early = await errorOf(t.admin.files.finishUpload({ uploadId }));
    expect(early.code).toBe(Code.FailedPrecondition);
    expect(early.message).toContain("send the rest from offset 1048576");
    expect((await t.admin.files.getUpload({ uploadId })).status).toBe(UploadStatus.ACTIVE);

    // Short as the agent knows it: every byte was sent, then the agent lost some (a crash before they reached the disk).
    await t.admin.files.uploadChunk({ uploadId, offset: 1048576n, data: data.subarray(1024 * 1024) });
    await waitFor(async () => (await t.admin.files.getUpload({ uploadId })).committedOffset === BigInt(data.length), 5000, "all bytes committed");
    agent.child.kill("SIGKILL");
    await waitFor(() => !t.server.router.isOnline(agentId), 5000, "agent offline");
    const temp = tempPathFor(join(root, "short.bin"), uploadId);
    await truncate(temp, 2 * 1024 * 1024 + 5);
    agent = await t.spawnAgent({ agentId, agentKey, allow: [root], stateDir });
    await agent.waitOnline();
    sessionId = (await t.admin.sessions.openTunnel({ agentId })).sessionId;
    const late = await errorOf(t.admin.files.finishUpload({ uploadId }));
    expect(late.code).toBe(Code.FailedPrecondition);
    expect(late.message).toContain(`send the rest from offset ${2 * 1024 * 1024 + 5}`);
    // Not failed on either side: the server says where the agent stands (lower than what it had recorded), the agent kept its bytes.
    const status = await t.admin.files.getUpload({ uploadId });
    expect(status.status).toBe(UploadStatus.ACTIVE);
    expect(status.committedOffset).toBe(BigInt(2 * 1024 * 1024 + 5));
    expect((await t.server.store.uploads.get(uploadId))?.committedOffset).toBe(2 * 1024 * 1024 + 5);
    expect((await stat(temp)).size).toBe(2 * 1024 * 1024 + 5);
    expect(await readdir(join(stateDir, "uploads"))).toEqual([`${uploadId}.json`]);

    const local = join(t.tempDir, "short-src.bin");
    await writeFile(local, data);
    const done = await uploadFile({ api: t.admin, session: async () => sessionId, localPath: local, remotePath: "short.bin", uploadId });
    expect(done.sha256).toBe(sha(data));
    expect((await readFile(join(root, "short.bin"))).equals(data)).toBe(true);
    expect((await t.admin.files.getUpload({ uploadId })).status).toBe(UploadStatus.FINISHED);
    expect(await readdir(root)).toEqual(["short.bin"]);
    expect(await readdir(join(stateDir, "uploads"))).toEqual([]);
    await agent.stop();
  });
});
