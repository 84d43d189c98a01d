// The bulk path for file bytes, beside the Connect API: raw bytes over HTTP,
// so a transfer's data skips protobuf messages on the API hop. Same domain
// calls, checks, audit and resume rules as FileService's UploadChunk and
// ReadFile; only the framing differs.
//
//   PUT /transfer/uploads/{uploadId}   Content-Range: bytes START-END/SIZE, body = those bytes
//       → 200 {"committedOffset": n, "receivedOffset": n}
//   GET /transfer/download?sessionId=…&path=…&offset=…&length=…
//       → 200, body = the bytes; headers x-guru-size, x-guru-path, x-guru-mime-type;
//         trailers x-guru-sha256 and x-guru-bytes-sent (or x-guru-error-code and -message)
//
// The technician token goes in the Authorization header (never in the URL);
// an upload is named by the id StartUpload returned. Refusals answer a JSON
// body {code, message, details} with Connect's error code names.
import type http from "node:http";
import type { Readable } from "node:stream";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { codeOfKind } from "../../lib/api-errors.ts";
import { GuruError, isGuruError, toGuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { AuthFailureLimit } from "../auth/auth-failures.ts";
import type { TokenService } from "../auth/tokens.ts";
import type { FileService } from "../domain/files.ts";
import type { UploadService } from "../domain/uploads.ts";
import { createBearerAuth, drained, sendRouteError, type Req, type Res } from "./bearer-routes.ts";
import { consumeBody } from "../../lib/body-chunks.ts";

const transferPathPrefix = "/transfer/";

/**
 * Upload bytes reach the agent in pieces of this size: the HTTP socket hands
 * over 16–64 KiB at a time, and a wire data frame per socket read would cost
 * the agent a message per 64 KiB.
 */
const uploadPieceBytes = 1024 * 1024;

export interface TransferRoutesOptions {
  tokens: TokenService;
  uploads: UploadService;
  files: FileService;
  logger: Logger;
  authFailures?: AuthFailureLimit;
  trustedProxies: readonly string[];
}

const contentRangePattern = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

export function createTransferRoutes(options: TransferRoutesOptions) {
  const { logger } = options;

  const authenticate = createBearerAuth(options);

  async function upload(req: Req, res: Res, uploadId: string): Promise<void> {
    const principal = await authenticate(req);
    const range = contentRangePattern.exec(String(req.headers["content-range"] ?? ""));
    if (range === null) throw new GuruError("invalid", "Content-Range must be 'bytes START-END/SIZE' (END inclusive)");
    const start = Number(range[1]);
    const end = Number(range[2]) + 1;
    if (!Number.isSafeInteger(end) || end <= start) throw new GuruError("invalid", `Content-Range ${range[0]} names no bytes`);
    const length = req.headers["content-length"];
    if (length !== undefined && Number(length) !== end - start)
      throw new GuruError("invalid", `Content-Length ${length} differs from the ${end - start} bytes of Content-Range`);
    // Refuse a wrong upload, token or offset before reading the body.
    let result = await options.uploads.chunk(principal, uploadId, BigInt(start), new Uint8Array(0));
    let offset = start;
    const piece = Buffer.allocUnsafe(Math.min(uploadPieceBytes, end - start));
    let filled = 0;
    const flush = async () => {
      if (filled === 0) return;
      result = await options.uploads.chunk(principal, uploadId, BigInt(offset), piece.subarray(0, filled));
      offset += filled;
      filled = 0;
    };
    /** Copies `data` from `from` into the piece; a full piece goes to the agent first, and the rest of `data` after it. */
    const take = (data: Buffer, from: number): Promise<void> | undefined => {
      for (let pos = from; pos < data.byteLength; ) {
        if (offset + filled >= end) throw new GuruError("invalid", `the body runs past Content-Range's end ${end - 1}`);
        const n = Math.min(data.byteLength - pos, piece.byteLength - filled, end - offset - filled);
        data.copy(piece, filled, pos, pos + n);
        filled += n;
        pos += n;
        if (filled === piece.byteLength) return flush().then(() => take(data, pos));
      }
      return undefined;
    };
    let bodyError: unknown;
    try {
      await consumeBody(req as Readable, (data) => take(data, 0));
    } catch (err) {
      bodyError = err;
    }
    // Bytes that arrived before a broken connection are good bytes: keep them for the resume.
    if (!isGuruError(bodyError)) await flush();
    if (bodyError !== undefined)
      throw isGuruError(bodyError) ? bodyError : new GuruError("unavailable", `the upload body broke off at ${offset}: ${(bodyError as Error).message}`);
    if (offset !== end)
      throw new GuruError("invalid", `the body ended at ${offset}, Content-Range said ${end}; resume from GetUpload's committed offset`, {
        details: { receivedOffset: offset },
      });
    const body = JSON.stringify({ committedOffset: result.committedOffset, receivedOffset: result.receivedOffset });
    (res as http.ServerResponse).writeHead(200, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  async function download(req: Req, res: Res, query: URLSearchParams): Promise<void> {
    const principal = await authenticate(req);
    const number = (name: string) => {
      const v = query.get(name);
      if (v === null || v === "") return 0;
      if (!/^\d+$/.test(v)) throw new GuruError("invalid", `${name} must be a non-negative integer`, { details: { [name]: v } });
      return Number(v);
    };
    const range = { sessionId: query.get("sessionId") ?? "", path: query.get("path") ?? "", offset: number("offset"), length: number("length") };
    // The client's going away cancels the agent's read.
    const gone = new AbortController();
    res.once("close", () => gone.abort());
    const out = res as http.ServerResponse;
    try {
      for await (const event of options.files.readFile(principal, range, gone.signal)) {
        if (event.type === "info") {
          out.writeHead(200, {
            "content-type": "application/octet-stream",
            "cache-control": "no-store",
            "x-guru-size": String(event.size),
            "x-guru-path": encodeURIComponent(event.path),
            "x-guru-mime-type": event.mimeType,
            trailer: "x-guru-sha256, x-guru-bytes-sent, x-guru-error-code, x-guru-error-message",
          });
        } else if (event.type === "chunk") {
          // The agent's credit comes back as we pull; the socket's buffer bounds what we hold.
          if (!out.write(event.data)) await drained(out);
          if (gone.signal.aborted) return;
        } else {
          out.addTrailers({ "x-guru-sha256": event.sha256, "x-guru-bytes-sent": String(event.bytesSent) });
          out.end();
          return;
        }
      }
    } catch (err) {
      if (!out.headersSent) throw err;
      const error = toGuruError(err);
      out.addTrailers({ "x-guru-error-code": codeToString(codeOfKind[error.kind]), "x-guru-error-message": encodeURIComponent(error.message) });
      out.end();
    }
  }

  /** Handles /transfer/… requests; false for any other path. */
  return async function handle(req: Req, res: Res): Promise<boolean> {
    if (!(req.url ?? "").startsWith(transferPathPrefix)) return false;
    const url = new URL(req.url ?? "/", "http://localhost");
    try {
      const uploadMatch = /^\/transfer\/uploads\/([^/]+)$/.exec(url.pathname);
      if (uploadMatch && req.method === "PUT") await upload(req, res, decodeURIComponent(uploadMatch[1]));
      else if (url.pathname === "/transfer/download" && req.method === "GET") await download(req, res, url.searchParams);
      else if (uploadMatch || url.pathname === "/transfer/download")
        throw new GuruError("invalid", `${req.method} is not allowed here: PUT /transfer/uploads/{uploadId}, GET /transfer/download`);
      else throw new GuruError("not_found", `no transfer route ${url.pathname}`);
    } catch (err) {
      sendRouteError(res, err, logger);
    }
    return true;
  };
}
