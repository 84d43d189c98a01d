// Client of the server's bulk path for file bytes (PUT /transfer/uploads/{id},
// GET /transfer/download): raw bytes over HTTP, with the technician token in
// the Authorization header. Errors come back as ConnectErrors with the code
// the server named, so callers retry and refuse exactly as with FileService.
import { open } from "node:fs/promises";
import { consumeBody } from "./body-chunks.ts";
import http from "node:http";
import https from "node:https";
import { ErrorInfoSchema } from "../gen/guru/api/v1/errors_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";

export interface BulkEndpoint {
  url: string;
  token?: string;
  /** Extra trusted CA (PEM) for https. */
  ca?: string | Buffer;
}

const agents = new WeakMap<BulkEndpoint, http.Agent>();

function agentFor(endpoint: BulkEndpoint): http.Agent {
  let agent = agents.get(endpoint);
  if (agent === undefined) {
    agent = endpoint.url.startsWith("https:") ? new https.Agent({ keepAlive: true, ca: endpoint.ca }) : new http.Agent({ keepAlive: true });
    agents.set(endpoint, agent);
  }
  return agent;
}

function request(endpoint: BulkEndpoint, method: string, path: string, headers: Record<string, string>): http.ClientRequest {
  const url = new URL(path, endpoint.url);
  const module = url.protocol === "https:" ? https : http;
  return module.request(url, {
    method,
    agent: agentFor(endpoint),
    headers: { ...headers, ...(endpoint.token ? { authorization: `Bearer ${endpoint.token}` } : {}) },
  });
}

/** A transport failure (reset, refused, broken off) is Unavailable: a resume gets past it. */
const unavailable = (err: unknown) =>
  err instanceof ConnectError ? err : new ConnectError(`transfer connection failed: ${(err as Error).message}`, Code.Unavailable, undefined, undefined, err);

async function errorOf(res: http.IncomingMessage): Promise<ConnectError> {
  let text = "";
  for await (const chunk of res) text += (chunk as Buffer).toString();
  try {
    const body = JSON.parse(text) as { code?: string; message?: string; reason?: string; metadata?: Record<string, string>; kind?: string };
    // Carries the reason and metadata as the Connect API's ErrorInfo detail, so callers read both paths alike.
    const detail = { desc: ErrorInfoSchema, value: { reason: body.reason ?? "", metadata: body.metadata ?? {}, kind: body.kind ?? "" } };
    return new ConnectError(
      body.message ?? `HTTP ${res.statusCode}`,
      codeFromString(body.code ?? "") ?? Code.Unknown,
      undefined,
      body.reason ? [detail] : undefined,
    );
  } catch {
    return new ConnectError(
      `HTTP ${res.statusCode}: ${text.slice(0, 200)}`,
      res.statusCode !== undefined && res.statusCode >= 500 ? Code.Unavailable : Code.Unknown,
    );
  }
}

/** Body buffers of one PUT: reused once the socket wrote them, so sending a GiB allocates a few MiB, not a GiB. */
const bodyBufferBytes = 1024 * 1024;
const bodyBuffersInFlight = 4;

/**
 * Sends bytes [start, end) of a local file as one PUT. Resolves with the
 * offsets the server reports.
 */
export function putUploadRange(
  endpoint: BulkEndpoint,
  o: {
    uploadId: string;
    localPath: string;
    start: number;
    end: number;
    size: number;
    /** Each piece read from the file, as it goes out (the upload hashes them). */
    onRead?: (position: number, data: Buffer) => void;
  },
): Promise<{ committedOffset: number; receivedOffset: number }> {
  return new Promise((resolve, reject) => {
    const req = request(endpoint, "PUT", `/transfer/uploads/${encodeURIComponent(o.uploadId)}`, {
      "content-type": "application/octet-stream",
      "content-length": String(o.end - o.start),
      "content-range": `bytes ${o.start}-${o.end - 1}/${o.size}`,
    });
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(unavailable(err));
    };
    req.once("error", fail);
    req.once("response", (res) => {
      void (async () => {
        if (res.statusCode !== 200) {
          const err = await errorOf(res);
          settled = true;
          reject(err);
          return;
        }
        let text = "";
        for await (const chunk of res) text += (chunk as Buffer).toString();
        const r = JSON.parse(text) as { committedOffset: number; receivedOffset: number };
        settled = true;
        resolve(r);
      })().catch(fail);
    });
    void sendFileRange(req, o.localPath, o.start, o.end, () => settled, o.onRead).catch(fail);
  });
}

function drainedOrClosed(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off("drain", done);
      req.off("close", done);
      resolve();
    };
    req.once("drain", done);
    req.once("close", done);
  });
}

/** Writes [start, end) of the file into the request and ends it; stops early once `stopped()`. */
async function sendFileRange(
  req: http.ClientRequest,
  path: string,
  start: number,
  end: number,
  stopped: () => boolean,
  onRead?: (position: number, data: Buffer) => void,
): Promise<void> {
  const file = await open(path, "r");
  try {
    const free: Buffer[] = [];
    let buffers = 0;
    let waiter: (() => void) | undefined;
    const released = (buffer: Buffer) => {
      free.push(buffer);
      const wake = waiter;
      waiter = undefined;
      wake?.();
    };
    for (let position = start; position < end && !stopped(); ) {
      let buffer = free.pop();
      if (buffer === undefined && buffers < bodyBuffersInFlight) {
        buffer = Buffer.allocUnsafe(bodyBufferBytes);
        buffers++;
      }
      if (buffer === undefined) {
        await new Promise<void>((resolve) => (waiter = resolve));
        continue;
      }
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.byteLength, end - position), position);
      if (bytesRead === 0) throw new Error(`${path} is shorter than ${end} bytes; it changed while being uploaded`);
      const data = buffer.subarray(0, bytesRead);
      onRead?.(position, data);
      const writing = buffer;
      // The socket holds `data` until its callback: only then may the buffer take the next read.
      const ok = req.write(data, () => released(writing));
      position += bytesRead;
      if (!ok && !stopped()) await drainedOrClosed(req);
    }
    if (!stopped()) req.end();
  } finally {
    await file.close();
  }
}

export interface DownloadInfo {
  size: number;
  path: string;
  mimeType: string;
}

/**
 * GETs a file from `offset`, handing each piece of the body to `onData` (which
 * may wait: the body is paused meanwhile). Resolves with the trailers' summary.
 */
export function getDownload(
  endpoint: BulkEndpoint,
  o: { sessionId: string; path: string; offset: number; onInfo: (info: DownloadInfo) => void; onData: (data: Buffer) => Promise<void> | void },
): Promise<{ sha256: string; bytesSent: number }> {
  const query = new URLSearchParams({ sessionId: o.sessionId, path: o.path, offset: String(o.offset) });
  return new Promise((resolve, reject) => {
    const req = request(endpoint, "GET", `/transfer/download?${query}`, {});
    req.once("error", (err) => reject(unavailable(err)));
    req.once("response", (res) => {
      void (async () => {
        if (res.statusCode !== 200) throw await errorOf(res);
        o.onInfo({
          size: Number(res.headers["x-guru-size"]),
          path: decodeURIComponent(String(res.headers["x-guru-path"] ?? o.path)),
          mimeType: String(res.headers["x-guru-mime-type"] ?? ""),
        });
        await consumeBody(res, (chunk) => o.onData(chunk) || undefined);
        if (!res.complete) throw new ConnectError("the download broke off", Code.Unavailable);
        const t = res.trailers;
        if (t["x-guru-error-code"])
          throw new ConnectError(decodeURIComponent(t["x-guru-error-message"] ?? ""), codeFromString(t["x-guru-error-code"]) ?? Code.Unknown);
        if (!t["x-guru-sha256"]) throw new ConnectError("the download ended without a summary", Code.Unavailable);
        return { sha256: t["x-guru-sha256"], bytesSent: Number(t["x-guru-bytes-sent"]) };
      })().then(resolve, (err: unknown) => {
        res.destroy();
        reject(unavailable(err));
      });
    });
    req.end();
  });
}
