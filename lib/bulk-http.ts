// Client of the server's bulk path for file bytes (PUT /transfer/uploads/{id},
// GET /transfer/download): raw bytes over HTTP, with the technician token in
// the Authorization header. Errors come back as ConnectErrors with the code
// the server named, so callers retry and refuse exactly as with FileService.
// Uploads go through Node's http client; a download is read through one
// reused buffer (lib/reused-buffer-http-get.ts), as a fresh buffer per socket
// read is what receiving a GiB spent most of its CPU time on.
import { open } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { ErrorInfoSchema } from "../gen/guru/api/v1/errors_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { getReusingBuffer, IncompleteResponseError, readBufferBytes } from "./reused-buffer-http-get.ts";

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

/** A refusal's JSON body ({code, message, reason, metadata, kind}) as the ConnectError the server meant. */
function errorFromBody(statusCode: number | undefined, text: string): ConnectError {
  try {
    const body = JSON.parse(text) as { code?: string; message?: string; reason?: string; metadata?: Record<string, string>; kind?: string };
    // Carries the reason and metadata as the Connect API's ErrorInfo detail, so callers read both paths alike.
    const detail = { desc: ErrorInfoSchema, value: { reason: body.reason ?? "", metadata: body.metadata ?? {}, kind: body.kind ?? "" } };
    return new ConnectError(
      body.message ?? `HTTP ${statusCode}`,
      codeFromString(body.code ?? "") ?? Code.Unknown,
      undefined,
      body.reason ? [detail] : undefined,
    );
  } catch {
    return new ConnectError(`HTTP ${statusCode}: ${text.slice(0, 200)}`, statusCode !== undefined && statusCode >= 500 ? Code.Unavailable : Code.Unknown);
  }
}

async function errorOf(res: http.IncomingMessage): Promise<ConnectError> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return errorFromBody(res.statusCode, Buffer.concat(chunks).toString());
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

/** The largest piece of body `getDownload` hands to `onData` at once. */
export const maxDownloadPieceBytes = readBufferBytes;

/** A refusal's body beyond this is not kept: a JSON error is a few hundred bytes. */
const maxErrorBodyBytes = 64 * 1024;

/**
 * GETs a file from `offset`, handing the body to `onData` piece by piece, in
 * order, each at most `maxDownloadPieceBytes`. A piece is a view into the one
 * buffer the connection reads into: it is valid only during the call, so
 * `onData` hashes or copies what it needs before it returns. It may return a
 * promise: reading stops, and no other piece comes, until it settles.
 * Resolves with the trailers' summary.
 */
export async function getDownload(
  endpoint: BulkEndpoint,
  o: { sessionId: string; path: string; offset: number; onInfo: (info: DownloadInfo) => void; onData: (view: Buffer) => Promise<void> | undefined },
): Promise<{ sha256: string; bytesSent: number }> {
  const query = new URLSearchParams({ sessionId: o.sessionId, path: o.path, offset: String(o.offset) });
  let refusal: { statusCode: number; pieces: Buffer[]; bytes: number } | undefined;
  try {
    const trailers = await getReusingBuffer({
      url: new URL(`/transfer/download?${query}`, endpoint.url),
      headers: endpoint.token ? { authorization: `Bearer ${endpoint.token}` } : {},
      ca: endpoint.ca,
      onHead: ({ statusCode, headers }) => {
        if (statusCode !== 200) {
          refusal = { statusCode, pieces: [], bytes: 0 };
          return;
        }
        o.onInfo({
          size: Number(headers["x-guru-size"]),
          path: decodeURIComponent(headers["x-guru-path"] ?? o.path),
          mimeType: headers["x-guru-mime-type"] ?? "",
        });
      },
      onBody: (view) => {
        if (refusal === undefined) return o.onData(view);
        if (refusal.bytes < maxErrorBodyBytes) {
          const kept = Buffer.from(view.subarray(0, maxErrorBodyBytes - refusal.bytes));
          refusal.pieces.push(kept);
          refusal.bytes += kept.byteLength;
        }
        return undefined;
      },
    });
    if (refusal !== undefined) throw errorFromBody(refusal.statusCode, Buffer.concat(refusal.pieces).toString());
    if (trailers["x-guru-error-code"])
      throw new ConnectError(decodeURIComponent(trailers["x-guru-error-message"] ?? ""), codeFromString(trailers["x-guru-error-code"]) ?? Code.Unknown);
    if (!trailers["x-guru-sha256"]) throw new ConnectError("the download ended without a summary", Code.Unavailable);
    return { sha256: trailers["x-guru-sha256"], bytesSent: Number(trailers["x-guru-bytes-sent"]) };
  } catch (err) {
    throw err instanceof IncompleteResponseError ? new ConnectError("the download broke off", Code.Unavailable, undefined, undefined, err) : unavailable(err);
  }
}
