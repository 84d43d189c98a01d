import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { errorInfoOf } from "./api-errors.ts";
import { getDownload, maxDownloadPieceBytes, type DownloadInfo } from "./bulk-http.ts";

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const servers: http.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** getDownload of `path` from offset 0, keeping a copy of each piece. */
async function download(url: string, token?: string) {
  const infos: DownloadInfo[] = [];
  const pieces: Buffer[] = [];
  const result = await getDownload(
    { url, token },
    {
      sessionId: "s-1",
      path: "/srv/a file.bin",
      offset: 0,
      onInfo: (info) => infos.push(info),
      onData: (view) => {
        expect(view.byteLength).toBeLessThanOrEqual(maxDownloadPieceBytes);
        pieces.push(Buffer.from(view));
        return undefined;
      },
    },
  ).then(
    (summary) => ({ summary, error: undefined }),
    (error: unknown) => ({ summary: undefined, error }),
  );
  return { ...result, infos, body: Buffer.concat(pieces) };
}

/** The server's download route's 200: headers, the body, then the summary (or an error) in trailers. */
function answer(res: http.ServerResponse, body: Buffer, trailers: Record<string, string>) {
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "x-guru-size": String(body.byteLength),
    "x-guru-path": encodeURIComponent("/srv/a file.bin"),
    "x-guru-mime-type": "application/pdf",
    trailer: "x-guru-sha256, x-guru-bytes-sent, x-guru-error-code, x-guru-error-message",
  });
  res.write(body);
  res.addTrailers(trailers);
  res.end();
}

describe("getDownload", () => {
  it("asks with the token in the Authorization header only, reports the info headers and resolves with the trailers' summary", async () => {
    const data = randomBytes(2 * MiB + 5);
    let request: http.IncomingMessage | undefined;
    const url = await serve((req, res) => {
      request = req;
      answer(res, data, { "x-guru-sha256": sha(data), "x-guru-bytes-sent": String(data.byteLength) });
    });
    const got = await download(url, "tech-token");
    expect(got.error).toBeUndefined();
    expect(got.summary).toEqual({ sha256: sha(data), bytesSent: data.byteLength });
    expect(got.infos).toEqual([{ size: data.byteLength, path: "/srv/a file.bin", mimeType: "application/pdf" }]);
    expect(got.body.equals(data)).toBe(true);
    expect(request?.headers.authorization).toBe("Bearer tech-token");
    expect(request?.url).toBe(`/transfer/download?${new URLSearchParams({ sessionId: "s-1", path: "/srv/a file.bin", offset: "0" })}`);
    expect(request?.url).not.toContain("tech-token");
  });

  it("turns a JSON refusal into the ConnectError the server named, with its reason and metadata", async () => {
    const url = await serve((_req, res) => {
      const body = JSON.stringify({
        code: "permission_denied",
        message: "session s-1 belongs to another technician",
        reason: "PERMISSION_DENIED",
        metadata: { sessionId: "s-1" },
        kind: "permission_denied",
      });
      res.writeHead(403, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
    const { error, infos } = await download(url, "tech-token");
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.PermissionDenied);
    expect((error as ConnectError).rawMessage).toBe("session s-1 belongs to another technician");
    expect(errorInfoOf(error)).toEqual({ reason: "PERMISSION_DENIED", metadata: { sessionId: "s-1" }, kind: "permission_denied" });
    expect(infos).toEqual([]);
  });

  it("takes a refusal that is not JSON from a proxy in front as unavailable when it is a 5xx", async () => {
    const url = await serve((_req, res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html>bad gateway</html>");
    });
    const { error } = await download(url);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toBe("HTTP 502: <html>bad gateway</html>");
  });

  it("fails as unavailable when the connection breaks mid-body, having handed over a true prefix", async () => {
    const data = randomBytes(8 * MiB);
    const url = await serve((_req, res) => {
      res.writeHead(200, { "x-guru-size": String(data.byteLength), trailer: "x-guru-sha256" });
      res.write(data.subarray(0, 3 * MiB), () => res.socket?.destroy());
    });
    const { error, body } = await download(url);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect(body.byteLength).toBeGreaterThan(0);
    expect(body.byteLength).toBeLessThanOrEqual(3 * MiB);
    expect(body.equals(data.subarray(0, body.byteLength))).toBe(true);
  });

  it("fails with the error the trailers carry, and as unavailable when they carry no summary", async () => {
    const data = randomBytes(1000);
    let trailers: Record<string, string> = { "x-guru-error-code": "data_loss", "x-guru-error-message": encodeURIComponent("the file changed: 50% read") };
    const url = await serve((_req, res) => answer(res, data, trailers));
    const failed = await download(url);
    expect((failed.error as ConnectError).code).toBe(Code.DataLoss);
    expect((failed.error as ConnectError).rawMessage).toBe("the file changed: 50% read");

    trailers = {};
    const unfinished = await download(url);
    expect((unfinished.error as ConnectError).code).toBe(Code.Unavailable);
    expect((unfinished.error as ConnectError).rawMessage).toBe("the download ended without a summary");
  });

  it("fails as unavailable when nothing listens", async () => {
    const url = await serve(() => {});
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
    const { error } = await download(url);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toMatch(/^transfer connection failed: .*ECONNREFUSED/);
  });
});
