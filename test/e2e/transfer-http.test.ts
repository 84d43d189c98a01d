// The bulk path for file bytes (PUT /transfer/uploads/{id}, GET
// /transfer/download) end to end: a real server, a real `guru agent`, real
// HTTP, both databases. Resume, refusals (wrong offset, token, owner) and a
// connection broken off mid-body, each with the state checked afterwards.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile, mkdtemp, readdir } from "node:fs/promises";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { join } from "node:path";
import { UploadStatus } from "../../gen/guru/api/v1/files_pb.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { downloadFile, partSuffix, uploadFile } from "../../lib/file-transfer.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON error body whose shape each assertion names
  body: Record<string, any>;
  raw: Buffer;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
}

function call(url: string, method: string, path: string, o: { token?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), { method, headers: { ...o.headers, ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks);
        let body = {};
        if (String(res.headers["content-type"]).startsWith("application/json")) body = JSON.parse(raw.toString());
        resolve({ status: res.statusCode!, body, raw, headers: res.headers, trailers: res.trailers });
      });
    });
    req.on("error", reject);
    req.end(o.body);
  });
}

const put = (t: TestServer, token: string | undefined, uploadId: string, data: Buffer, start: number, size: number, headers: Record<string, string> = {}) =>
  call(t.url, "PUT", `/transfer/uploads/${uploadId}`, {
    token,
    body: data,
    headers: { "content-range": `bytes ${start}-${start + data.byteLength - 1}/${size}`, ...headers },
  });

describeDatabases("bulk transfer route", (kind) => {
  let t: TestServer;
  let agent: AgentProcess;
  let sessionId: string;
  let root: string;
  beforeAll(async () => {
    t = await startTestServer({ kind });
    root = await mkdtemp(join(t.tempDir, "allowed-"));
    agent = await t.startAgent(`bulk-${kind}`, { allow: [root] });
    sessionId = (await t.admin.sessions.openTunnel({ agentId: agent.agentId })).sessionId;
  });
  afterAll(async () => {
    await t?.close();
  });

  const start = async (name: string, data: Buffer) =>
    (await t.admin.files.startUpload({ sessionId, path: join(root, name), size: BigInt(data.byteLength), sha256: sha(data) })).uploadId;

  it("uploads in two ranges, resuming from the committed offset, and downloads it back, byte-identical", async () => {
    const data = randomBytes(6 * MiB + 123);
    const uploadId = await start("two-ranges.bin", data);
    const first = await put(t, t.adminToken, uploadId, data.subarray(0, 2 * MiB), 0, data.byteLength);
    expect(first.status).toBe(200);
    expect(first.body.receivedOffset).toBe(2 * MiB);
    await waitFor(async () => Number((await t.admin.files.getUpload({ uploadId })).committedOffset) === 2 * MiB, 10_000, "2 MiB committed");
    // A resent range overlapping what the agent has is harmless.
    const rest = await put(t, t.adminToken, uploadId, data.subarray(MiB), MiB, data.byteLength);
    expect(rest.status, JSON.stringify(rest.body)).toBe(200);
    expect(rest.body.receivedOffset).toBe(data.byteLength);
    const done = await t.admin.files.finishUpload({ uploadId });
    expect(done.sha256).toBe(sha(data));
    expect(sha(await readFile(join(root, "two-ranges.bin")))).toBe(sha(data));

    const got = await call(t.url, "GET", `/transfer/download?${new URLSearchParams({ sessionId, path: join(root, "two-ranges.bin"), offset: String(MiB) })}`, {
      token: t.adminToken,
    });
    expect(got.status).toBe(200);
    expect(Number(got.headers["x-guru-size"])).toBe(data.byteLength);
    expect(decodeURIComponent(String(got.headers["x-guru-path"]))).toBe(join(root, "two-ranges.bin"));
    expect(got.raw.equals(data.subarray(MiB))).toBe(true);
    expect(got.trailers["x-guru-sha256"]).toBe(sha(data.subarray(MiB)));
    expect(Number(got.trailers["x-guru-bytes-sent"])).toBe(data.byteLength - MiB);
  });

  it("uploadFile and downloadFile over the bulk path, a download resumed from its partial", async () => {
    const data = randomBytes(3 * MiB + 7);
    const local = join(t.tempDir, "bulk-local.bin");
    await writeFile(local, data);
    const up = await uploadFile({ api: t.admin, session: async () => sessionId, localPath: local, remotePath: join(root, "bulk.bin"), bulk: t.admin.endpoint });
    expect(up.sha256).toBe(sha(data));
    const back = join(t.tempDir, "bulk-back.bin");
    await writeFile(back + partSuffix, data.subarray(0, MiB + 5));
    const down = await downloadFile({
      api: t.admin,
      session: async () => sessionId,
      remotePath: join(root, "bulk.bin"),
      localPath: back,
      resume: true,
      bulk: t.admin.endpoint,
    });
    expect(down.resumedFrom).toBe(MiB + 5);
    expect((await readFile(back)).equals(data)).toBe(true);
  });

  it("refuses a range past the received offset with 409 naming the expected offset, and loses nothing", async () => {
    const data = randomBytes(4 * MiB);
    const uploadId = await start("gap.bin", data);
    expect((await put(t, t.adminToken, uploadId, data.subarray(0, MiB), 0, data.byteLength)).status).toBe(200);
    const gap = await put(t, t.adminToken, uploadId, data.subarray(3 * MiB), 3 * MiB, data.byteLength);
    expect(gap.status).toBe(409);
    expect(gap.body.code).toBe("failed_precondition");
    expect(gap.body.reason).toBe("UPLOAD_OFFSET_MISMATCH");
    expect(gap.body.metadata.expectedOffset).toBe(String(MiB));
    expect(gap.body.message).toContain(`expected offset ${MiB}`);
    const status = await t.admin.files.getUpload({ uploadId });
    expect(status.status).toBe(UploadStatus.ACTIVE);
    expect(Number(status.committedOffset)).toBeLessThanOrEqual(MiB);
    expect((await put(t, t.adminToken, uploadId, data.subarray(MiB), MiB, data.byteLength)).status).toBe(200);
    expect((await t.admin.files.finishUpload({ uploadId })).sha256).toBe(sha(data));
  });

  it("refuses a missing or wrong token, someone else's upload and a bad Content-Range, writing nothing", async () => {
    const data = randomBytes(MiB);
    const uploadId = await start("refused.bin", data);
    const missing = await put(t, undefined, uploadId, data, 0, data.byteLength);
    expect([missing.status, missing.body.code]).toEqual([401, "unauthenticated"]);
    const wrong = await put(t, "not-a-token", uploadId, data, 0, data.byteLength);
    expect([wrong.status, wrong.body.code]).toEqual([401, "unauthenticated"]);
    const other = await t.createTech(`bulk-other-${kind}`);
    const theirs = await put(t, other.token, uploadId, data, 0, data.byteLength);
    expect([theirs.status, theirs.body.code]).toEqual([403, "permission_denied"]);
    expect(theirs.body.message).toContain("belongs to another technician");
    const badRange = await put(t, t.adminToken, uploadId, data, 0, data.byteLength, { "content-range": "bytes=0-" });
    expect([badRange.status, badRange.body.code]).toEqual([400, "invalid_argument"]);
    const unknown = await put(t, t.adminToken, "00000000-0000-4000-8000-000000000000", data, 0, data.byteLength);
    expect([unknown.status, unknown.body.code]).toEqual([404, "not_found"]);
    const status = await t.admin.files.getUpload({ uploadId });
    expect([status.status, Number(status.committedOffset)]).toEqual([UploadStatus.ACTIVE, 0]);
    expect(await readdir(root)).not.toContain("refused.bin");

    // Downloads: someone else's tunnel, and a path outside the allowlist.
    const path = join(root, "two-ranges.bin");
    const otherDownload = await call(t.url, "GET", `/transfer/download?${new URLSearchParams({ sessionId, path })}`, { token: other.token });
    expect([otherDownload.status, otherDownload.body.code]).toEqual([403, "permission_denied"]);
    const outside = await call(t.url, "GET", `/transfer/download?${new URLSearchParams({ sessionId, path: "/etc/passwd" })}`, { token: t.adminToken });
    expect([outside.status, outside.body.code]).toEqual([403, "permission_denied"]);
    expect(outside.raw.toString()).not.toContain("root:");
  });

  it("fails a download whose connection breaks mid-body as unavailable, keeps the part file, and a resume finishes byte-identical", async () => {
    const data = randomBytes(12 * MiB);
    await writeFile(join(root, "cut.bin"), data);
    // A relay that passes the server's first 5 MiB and then cuts both sides.
    const cutAfter = 5 * MiB;
    const target = new URL(t.url);
    const relay = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      let passed = 0;
      client.pipe(upstream);
      upstream.on("data", (chunk: Buffer) => {
        const room = cutAfter - passed;
        passed += chunk.byteLength;
        if (room > 0) client.write(room >= chunk.byteLength ? chunk : chunk.subarray(0, room));
        if (passed >= cutAfter) {
          client.destroy();
          upstream.destroy();
        }
      });
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const local = join(t.tempDir, "cut-local.bin");
    try {
      const relayed = { url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`, token: t.adminToken };
      const failure = await downloadFile({
        api: t.admin,
        session: async () => sessionId,
        remotePath: join(root, "cut.bin"),
        localPath: local,
        bulk: relayed,
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      }).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(ConnectError);
      expect((failure as ConnectError).code).toBe(Code.Unavailable);
    } finally {
      relay.close();
    }
    const part = await readFile(local + partSuffix);
    expect(part.byteLength).toBeGreaterThan(0);
    expect(part.byteLength).toBeLessThan(cutAfter);
    expect(part.equals(data.subarray(0, part.byteLength))).toBe(true);
    const done = await downloadFile({
      api: t.admin,
      session: async () => sessionId,
      remotePath: join(root, "cut.bin"),
      localPath: local,
      resume: true,
      bulk: t.admin.endpoint,
    });
    expect(done.resumedFrom).toBe(part.byteLength);
    expect((await readFile(local)).equals(data)).toBe(true);
  });

  it("keeps a sane committed offset when the connection breaks mid-body, and a resume finishes byte-identical", async () => {
    const data = randomBytes(8 * MiB);
    const uploadId = await start("broken.bin", data);
    const sentBytes = 3 * MiB + 1000;
    await new Promise<void>((resolve) => {
      const req = http.request(new URL(`/transfer/uploads/${uploadId}`, t.url), {
        method: "PUT",
        headers: {
          authorization: `Bearer ${t.adminToken}`,
          "content-range": `bytes 0-${data.byteLength - 1}/${data.byteLength}`,
          "content-length": String(data.byteLength),
        },
      });
      req.on("error", () => resolve());
      req.write(data.subarray(0, sentBytes), () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 300),
      );
    });
    let committed = 0;
    await waitFor(
      async () => {
        committed = Number((await t.admin.files.getUpload({ uploadId })).committedOffset);
        return committed === sentBytes;
      },
      10_000,
      "the bytes that arrived committed",
    );
    const local = join(t.tempDir, "broken-local.bin");
    await writeFile(local, data);
    const done = await uploadFile({
      api: t.admin,
      session: async () => sessionId,
      localPath: local,
      remotePath: join(root, "broken.bin"),
      uploadId,
      sha256: sha(data),
      bulk: t.admin.endpoint,
    });
    expect(done.sha256).toBe(sha(data));
    expect((await readFile(join(root, "broken.bin"))).equals(data)).toBe(true);
  });
});
