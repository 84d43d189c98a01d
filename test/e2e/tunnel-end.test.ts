// A tunnel that ends takes its work with it: force-close, close, idle expiry
// and token revocation kill a running command's processes on the agent, stop
// downloads and close upload channels (the partial stays and resumes in a new
// tunnel). Real server, real agent processes, real Connect clients, real DB.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ExitReason } from "../../gen/guru/api/v1/exec_pb.js";
import { UploadStatus } from "../../gen/guru/api/v1/files_pb.js";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import type { ApiClients } from "../../lib/api-client.ts";
import { describeDatabases } from "../support/databases.ts";
import { collectStream, errorOf, isAlive, openTunnel, waitDead, type Tunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let seq = 0;

/** Starts `sleep 60` on the agent (its pid written to a file first) and resolves once it runs. */
async function startSleep(t: TestServer, tunnel: Tunnel) {
  const pidFile = join(t.tempDir, `sleep-${process.pid}-${++seq}.pid`);
  const stream = collectStream(
    tunnel.api.exec.streamCommand({ sessionId: tunnel.sessionId, command: `sleep 60 & echo $! > '${pidFile}'; wait`, timeoutMs: 120_000 }),
  ).then(
    (collected) => ({ collected, error: undefined }),
    (error: unknown) => ({ collected: undefined, error: ConnectError.from(error) }),
  );
  let pid = 0;
  await waitFor(
    async () => {
      pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
      return pid > 0;
    },
    10_000,
    "the sleep's pid file",
  );
  expect(isAlive(pid)).toBe(true);
  return { pid, stream };
}

/** A download of a file far larger than the windows in flight; reading paused after the first chunk. */
async function startDownload(t: TestServer, tunnel: Tunnel) {
  const path = join(t.tempDir, `big-${process.pid}-${++seq}.bin`);
  await writeFile(path, randomBytes(48 * 1024 * 1024));
  const iterator = tunnel.api.files.readFile({ sessionId: tunnel.sessionId, path })[Symbol.asyncIterator]();
  const first = await iterator.next();
  expect(first.done).toBe(false);
  /** Reads on; resolves with the error the stream ended with (or undefined when it finished). */
  const rest = async () => {
    try {
      for (let r = await iterator.next(); !r.done; r = await iterator.next());
      return undefined;
    } catch (err) {
      return ConnectError.from(err);
    }
  };
  return { rest };
}

/** An upload with its first MiB sent, of 4 MiB. */
async function startUpload(api: ApiClients, sessionId: string, dir: string) {
  const data = randomBytes(4 * 1024 * 1024);
  const path = join(dir, `up-${process.pid}-${++seq}.bin`);
  const { uploadId } = await api.files.startUpload({ sessionId, path, size: BigInt(data.length), sha256: sha(data) });
  await api.files.uploadChunk({ uploadId, offset: 0n, data: data.subarray(0, 1024 * 1024) });
  return { uploadId, path, data };
}

async function expectEnded(t: TestServer, sessionId: string, reasonPart: string) {
  const session = await t.server.store.sessions.get(sessionId);
  expect(session?.status).not.toBe("active");
  expect(session?.closeReason).toContain(reasonPart);
  // Nothing of the tunnel still runs on the server.
  await waitFor(() => t.server.work.count({ sessionId }) === 0, 5000, "the tunnel's operations to end");
}

describeDatabases("a tunnel's end ends its work", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { sessionIdleMs: 60_000, sessionSweepIntervalMs: 100 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("ForceCloseTunnel kills a running command's processes on the agent", async () => {
    const tunnel = await openTunnel(t, "force");
    const sleep = await startSleep(t, tunnel);
    await t.admin.admin.forceCloseTunnel({ sessionId: tunnel.sessionId, reason: "incident" });
    await waitDead([sleep.pid]);
    const { collected, error } = await sleep.stream;
    // The command ends canceled (the agent killed it) instead of running on.
    expect(error?.code ?? collected?.result?.reason, String(error)).toBe(collected ? ExitReason.CANCELED : Code.Canceled);
    await expectEnded(t, tunnel.sessionId, "force-closed");
    await t.server.commands.drain();
    const [row] = await t.server.store.audit.listCommands({ sessionId: tunnel.sessionId });
    expect(row.exitReason).toBe("canceled");
    expect(row.refusalReason).toContain("tunnel ended");
  });

  it("CloseTunnel stops a running download and closes an upload's channel; the upload resumes in a new tunnel", async () => {
    const tunnel = await openTunnel(t, "close");
    const download = await startDownload(t, tunnel);
    const upload = await startUpload(tunnel.api, tunnel.sessionId, t.tempDir);
    const sleep = await startSleep(t, tunnel);
    expect(t.server.work.count({ sessionId: tunnel.sessionId })).toBe(3);

    await tunnel.api.sessions.closeTunnel({ sessionId: tunnel.sessionId });
    const downloadError = await download.rest();
    expect(downloadError?.code, String(downloadError)).toBe(Code.Canceled);
    expect(downloadError?.rawMessage).toContain("tunnel ended");
    await waitDead([sleep.pid]);
    await expectEnded(t, tunnel.sessionId, "closed by the technician");

    // The upload waits for a new tunnel: more bytes now are refused and change nothing.
    const refused = await errorOf(tunnel.api.files.uploadChunk({ uploadId: upload.uploadId, offset: 1024n * 1024n, data: upload.data.subarray(1024 * 1024) }));
    expect(refused.code, refused.message).toBe(Code.FailedPrecondition);
    expect(refused.message).toContain("open a tunnel");
    const [downloadRow] = (await t.server.store.audit.listFiles({ sessionId: tunnel.sessionId })).filter((r) => r.operation === "read");
    expect(downloadRow.outcome).toBe("failed");

    // Resumable: a new tunnel of the same technician continues from what the agent has.
    const { sessionId } = await tunnel.api.sessions.openTunnel({ agentId: tunnel.agent.agentId });
    const state = await tunnel.api.files.getUpload({ uploadId: upload.uploadId });
    expect(state.status).toBe(UploadStatus.ACTIVE);
    const from = Number(state.committedOffset);
    expect(from).toBe(1024 * 1024);
    await tunnel.api.files.uploadChunk({ uploadId: upload.uploadId, offset: BigInt(from), data: upload.data.subarray(from) });
    const done = await tunnel.api.files.finishUpload({ uploadId: upload.uploadId });
    expect(done.sha256).toBe(sha(upload.data));
    expect(sha(await readFile(upload.path))).toBe(sha(upload.data));
    await tunnel.api.sessions.closeTunnel({ sessionId });
  });

  it("revoking the token that opened the tunnel ends the tunnel and its command at once", async () => {
    const tunnel = await openTunnel(t, "revoke");
    const tokenId = JSON.parse(Buffer.from(tunnel.token.split(".")[1], "base64url").toString()).jti as string;
    const sleep = await startSleep(t, tunnel);
    const download = await startDownload(t, tunnel);
    await t.admin.admin.revokeToken({ tokenId });
    await waitDead([sleep.pid]);
    expect((await download.rest())?.code).toBe(Code.Canceled);
    await expectEnded(t, tunnel.sessionId, "token was revoked");
    // Refused at once, although this server trusts a confirmed token for a while.
    expect((await errorOf(tunnel.api.agents.listAgents({}))).code).toBe(Code.Unauthenticated);
  });

  it("an upload over the per-technician cap is refused naming the cap; the uploads in progress stay intact", async () => {
    const capped = await startTestServer({ kind, config: { maxUploadsPerTechnicianAgent: 2 } });
    try {
      const tunnel = await openTunnel(capped, "cap");
      const first = await startUpload(tunnel.api, tunnel.sessionId, capped.tempDir);
      const second = await startUpload(tunnel.api, tunnel.sessionId, capped.tempDir);
      const data = Buffer.from("one too many");
      const over = await errorOf(
        tunnel.api.files.startUpload({ sessionId: tunnel.sessionId, path: join(capped.tempDir, "third.bin"), size: BigInt(data.length), sha256: sha(data) }),
      );
      expect(over.code, over.message).toBe(Code.ResourceExhausted);
      expect(over.message).toContain("GURU_MAX_UPLOADS_PER_TECHNICIAN_AGENT");
      expect(over.message).toContain("at most 2");
      // No row for the refused one; both others finish.
      const rows = await capped.server.store.db.query<{ n: string }>("SELECT count(*) AS n FROM uploads WHERE technician_id = $1", [tunnel.technicianId]);
      expect(Number(rows.rows[0].n)).toBe(2);
      for (const u of [first, second]) {
        await tunnel.api.files.uploadChunk({ uploadId: u.uploadId, offset: 1024n * 1024n, data: u.data.subarray(1024 * 1024) });
        expect((await tunnel.api.files.finishUpload({ uploadId: u.uploadId })).sha256).toBe(sha(u.data));
      }
      // Room again once they are done.
      const third = await tunnel.api.files.startUpload({
        sessionId: tunnel.sessionId,
        path: join(capped.tempDir, "third.bin"),
        size: BigInt(data.length),
        sha256: sha(data),
      });
      await tunnel.api.files.uploadChunk({ uploadId: third.uploadId, offset: 0n, data });
      await tunnel.api.files.finishUpload({ uploadId: third.uploadId });
    } finally {
      await capped.close();
    }
  });
});

describeDatabases("idle expiry ends a tunnel's work", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { sessionIdleMs: 1500, sessionSweepIntervalMs: 100 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("kills the running command and stops the download when the tunnel expires", async () => {
    const tunnel = await openTunnel(t, "idle");
    const sleep = await startSleep(t, tunnel);
    const download = await startDownload(t, tunnel);
    await waitDead([sleep.pid], 10_000);
    expect((await download.rest())?.code).toBe(Code.Canceled);
    await expectEnded(t, tunnel.sessionId, "idle");
    const session = await t.admin.sessions.getTunnelStatus({ sessionId: tunnel.sessionId });
    expect(session.session?.status).toBe(SessionStatus.EXPIRED);
  });
});
