import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { makeSelfSignedCert } from "../test/support/self-signed-cert.ts";
import { getReusingBuffer, IncompleteResponseError, maxHeadBytes, readBufferBytes, type ResponseHead } from "./reused-buffer-http-get.ts";

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function listen(server: net.Server, scheme: "http" | "https" = "http", host = "127.0.0.1"): Promise<URL> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => server.close());
  return new URL(`${scheme}://${host}:${(server.address() as AddressInfo).port}/`);
}

/** A server that writes `response` as it is (bytes the http module would not send), then ends. */
function rawServer(response: Buffer | string): Promise<URL> {
  return listen(
    net.createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.end(response));
    }),
  );
}

/** GETs `url`, keeping a copy of every piece and what the handlers saw. */
async function get(url: URL, o: { headers?: Record<string, string>; ca?: string; onBody?: (view: Buffer) => Promise<void> | undefined } = {}) {
  const heads: ResponseHead[] = [];
  const pieces: Buffer[] = [];
  const views: Buffer[] = [];
  const trailers = await getReusingBuffer({
    url,
    headers: o.headers ?? {},
    ca: o.ca,
    onHead: (head) => heads.push(head),
    onBody: (view) => {
      views.push(view);
      pieces.push(Buffer.from(view));
      return o.onBody?.(view);
    },
  });
  return { heads, body: Buffer.concat(pieces), views, trailers };
}

const pieceSizes = [1, 7, readBufferBytes + 1, 3, 100_000, 13, 4 * readBufferBytes + 5, 2, 999_999];

/** Writes `data` in the odd-sized pieces above, yielding between them, then the trailers. */
async function writeInPieces(res: http.ServerResponse, data: Buffer, trailers: Record<string, string>) {
  res.writeHead(200, { "content-type": "application/octet-stream", "x-guru-size": String(data.byteLength), trailer: Object.keys(trailers).join(", ") });
  for (let at = 0, i = 0; at < data.byteLength; i++) {
    const piece = data.subarray(at, at + pieceSizes[i % pieceSizes.length]);
    at += piece.byteLength;
    if (!res.write(piece)) await new Promise((resolve) => res.once("drain", resolve));
    if (i % 2 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  res.addTrailers(trailers);
  res.end();
}

describe("GET through one reused buffer", () => {
  it("delivers a chunked body written in odd-sized pieces byte-identical, each piece a view into the one read buffer, then the trailers", async () => {
    const data = randomBytes(3 * MiB + 17);
    let request: http.IncomingMessage | undefined;
    const url = await listen(
      http.createServer((req, res) => {
        request = req;
        void writeInPieces(res, data, { "x-guru-sha256": sha(data), "x-guru-bytes-sent": String(data.byteLength) });
      }),
    );
    const got = await get(new URL("/transfer/download?path=%2Fa%20b&offset=0", url), { headers: { authorization: "Bearer t0ken" } });

    expect(got.body.equals(data)).toBe(true);
    expect(got.heads).toEqual([
      { statusCode: 200, headers: expect.objectContaining({ "x-guru-size": String(data.byteLength), "transfer-encoding": "chunked" }) },
    ]);
    expect({ ...got.trailers }).toEqual({ "x-guru-sha256": sha(data), "x-guru-bytes-sent": String(data.byteLength) });
    expect(new Set(got.views.map((v) => v.buffer)).size).toBe(1);
    expect(Math.max(...got.views.map((v) => v.byteLength))).toBeLessThanOrEqual(readBufferBytes);
    expect(request?.url).toBe("/transfer/download?path=%2Fa%20b&offset=0");
    expect(request?.headers).toMatchObject({
      host: url.host,
      authorization: "Bearer t0ken",
      connection: "close",
      "accept-encoding": "identity",
    });
  });

  it("over TLS, trusts the given CA, names the host for SNI, and refuses the certificate without that CA", async () => {
    const dir = await mkdtemp(join(tmpdir(), "guru-reused-get-"));
    closers.push(() => void rm(dir, { recursive: true, force: true }));
    const { keyPath, certPath } = makeSelfSignedCert(dir);
    const ca = await readFile(certPath, "utf8");
    const data = randomBytes(MiB + 3);
    const servernames: (string | false | null)[] = [];
    const server = https.createServer({ key: await readFile(keyPath), cert: ca }, (req, res) => {
      servernames.push((req.socket as TLSSocket).servername);
      void writeInPieces(res, data, { "x-guru-sha256": sha(data) });
    });
    const url = await listen(server, "https", "localhost");

    const got = await get(url, { ca });
    expect(got.body.equals(data)).toBe(true);
    expect(got.trailers["x-guru-sha256"]).toBe(sha(data));
    expect(servernames).toEqual(["localhost"]);
    await expect(get(url)).rejects.toThrow(/self-signed certificate/);
  });

  it("refuses a response head over the limit before handing it over, and takes one just under it", async () => {
    const head = (bytes: number) => `HTTP/1.1 200 OK\r\nx-padding: ${"a".repeat(bytes)}\r\ncontent-length: 2\r\n\r\nok`;
    let heads = 0;
    const tooBig = getReusingBuffer({ url: await rawServer(head(maxHeadBytes)), headers: {}, onHead: () => void heads++, onBody: () => undefined });
    await expect(tooBig).rejects.toThrow(`the response's head is larger than ${maxHeadBytes / 1024} KiB`);
    expect(heads).toBe(0);

    const fits = await get(await rawServer(head(maxHeadBytes - 100)));
    expect(fits.body.toString()).toBe("ok");
    expect(fits.heads[0].headers["x-padding"]).toHaveLength(maxHeadBytes - 100);
  });

  it("refuses trailers that run past the limit", async () => {
    const response = `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-padding: ${"a".repeat(2 * maxHeadBytes)}\r\n\r\n`;
    await expect(get(await rawServer(response))).rejects.toThrow(/trailers run past/);
  });

  it("skips a 1xx answer, and takes a body that ends with the connection", async () => {
    const got = await get(await rawServer("HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nx-a: 1\r\n\r\nuntil the end"));
    expect(got.heads).toEqual([{ statusCode: 200, headers: { "x-a": "1" } }]);
    expect(got.body.toString()).toBe("until the end");
  });

  it("fails with IncompleteResponseError when the connection closes inside the body, after handing over a true prefix", async () => {
    const data = randomBytes(MiB);
    const url = await listen(
      net.createServer((socket) => {
        socket.once("data", () => {
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${2 * MiB}\r\n\r\n`);
          socket.end(data);
        });
      }),
    );
    const pieces: Buffer[] = [];
    const failure = await getReusingBuffer({
      url,
      headers: {},
      onHead: () => {},
      onBody: (view) => void pieces.push(Buffer.from(view)),
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(IncompleteResponseError);
    expect(Buffer.concat(pieces).equals(data)).toBe(true);
  });

  it("stops reading while the consumer waits: no piece comes and the sender is held back, then all of it arrives", async () => {
    const total = 64 * MiB;
    const block = randomBytes(MiB);
    let written = 0;
    const url = await listen(
      http.createServer(async (_req, res) => {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        for (; written < total; written += block.byteLength) {
          if (!res.write(block)) await new Promise((resolve) => res.once("drain", resolve));
        }
        res.end();
      }),
    );
    let waiting = false;
    let piecesWhileWaiting = 0;
    let writtenAfterWait = 0;
    const hash = createHash("sha256");
    let received = 0;
    let paused = false;
    await getReusingBuffer({
      url,
      headers: {},
      onHead: () => {},
      onBody: (view) => {
        if (waiting) piecesWhileWaiting++;
        hash.update(view);
        received += view.byteLength;
        if (paused || received < 2 * MiB) return undefined;
        // A consumer far behind: it keeps the first read it asked to wait on for half a second.
        paused = true;
        waiting = true;
        return new Promise((resolve) =>
          setTimeout(() => {
            waiting = false;
            writtenAfterWait = written;
            resolve();
          }, 500),
        );
      },
    });
    expect(piecesWhileWaiting).toBe(0);
    // What the kernel's socket buffers hold, not the 64 MiB the sender had.
    expect(writtenAfterWait).toBeLessThan(24 * MiB);
    expect(received).toBe(total);
    const expected = createHash("sha256");
    for (let i = 0; i < total / MiB; i++) expected.update(block);
    expect(hash.digest("hex")).toBe(expected.digest("hex"));
  });
});
