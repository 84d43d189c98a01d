// Client side of file transfers over the Connect API, shared by `guru cp`,
// tests and benchmarks. Uploads: unary chunks at offsets, a few in flight,
// resumed from the agent's committed offset after any transient failure.
// Downloads: ReadFile into `<dst>.guru-part`, resumed from its length, checked
// against the summary's SHA-256, then renamed into place.
import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import { open, rename, stat, type FileHandle } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { UploadStatus } from "../gen/guru/api/v1/files_pb.js";
import type { ApiClients } from "./api-client.ts";
import { errorInfoOf, fromConnectError } from "./api-errors.ts";
import { getDownload, maxDownloadPieceBytes, putUploadRange, type BulkEndpoint } from "./bulk-http.ts";
import { GuruError, toGuruError, type ErrorKind, type ErrorReason } from "./errors.ts";
import { createPooledFileWriter } from "./pooled-file-writer.ts";
import { createSendingHash } from "./sending-hash.ts";
import { createWriteBehindSync } from "./write-behind-sync.ts";

const MiB = 1024 * 1024;
/**
 * About 8 MiB per UploadChunk: few calls per GiB, well below the server's 16
 * MiB read limit. 64 bytes short of 8 MiB so that the encoded request (upload
 * id, offset, tags: under 64 bytes) fits the protobuf writer's power-of-two
 * buffer; at a round 8 MiB it grows to a zero-filled 16 MiB on every call.
 */
const defaultUploadChunkBytes = 8 * MiB - 64;

/**
 * Bytes per PUT on the bulk path. Each answer says what the server accepted,
 * which is what progress reports (and where a killed run resumes near), and a
 * slow link still finishes each request well inside the server's request
 * timeout; the idle round trip between requests costs little at this size.
 */
const bulkSegmentBytes = 16 * MiB;

export interface TransferProgress {
  /** Bytes in place (uploads: accepted by the server; downloads: written locally). */
  done: number;
  total: number;
}

export interface RetryPolicy {
  /** Consecutive failed attempts before giving up. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

const defaultRetry: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 10_000 };

const retryableKinds = new Set<ErrorKind>(["agent_offline", "unavailable", "timeout", "internal"]);
const retryableReasons = new Set<string>([
  "SESSION_NOT_ACTIVE",
  "SESSION_NOT_FOUND",
  "TUNNEL_REQUIRED",
  "UPLOAD_OFFSET_MISMATCH",
  "UPLOAD_INCOMPLETE",
  "FILE_CHANGED",
  "RATE_LIMITED",
  "CHANNELS_EXHAUSTED",
  // A download whose bytes did not add up: the part file was cut back, so a retry starts clean.
  "DATA_LOSS",
] satisfies ErrorReason[]);

/** A server without the ErrorInfo detail (older than 0.3): judged by code alone. */
const retryableCodes = new Set([Code.Unavailable, Code.FailedPrecondition, Code.DeadlineExceeded, Code.Aborted, Code.Unknown, Code.Internal]);

/**
 * Failures a resume can get past: the link, the agent or the tunnel went away,
 * chunks raced, a limit asks for a wait. Judged by the error's reason and
 * kind; an upload the server failed or aborted, a refusal or a checksum
 * mismatch is final.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectError && errorInfoOf(err) === undefined) return retryableCodes.has(err.code);
  const e = err instanceof GuruError ? err : err instanceof ConnectError ? fromConnectError(err) : toGuruError(err);
  return retryableKinds.has(e.kind) || retryableReasons.has(e.reason);
}

/** The wait a refusal asked for (retryAfterMs), if any. */
export function retryAfterMsOf(err: unknown): number | undefined {
  const e = err instanceof GuruError ? err : err instanceof ConnectError ? fromConnectError(err) : undefined;
  const ms = Number(e?.metadata.retryAfterMs);
  return e?.metadata.retryAfterMs !== undefined && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

export async function sha256OfFile(path: string, end?: number): Promise<string> {
  const hash = createHash("sha256");
  if (end === 0) return hash.digest("hex");
  // One buffer for the whole file: a fresh one per read costs page faults and garbage.
  const file = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(MiB);
    for (let position = 0; end === undefined || position < end; ) {
      const { bytesRead } = await file.read(buffer, 0, end === undefined ? MiB : Math.min(MiB, end - position), position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await file.close();
  }
  return hash.digest("hex");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withRetries<T>(retry: RetryPolicy, attempt: () => Promise<T>, onRetry?: (err: unknown, delayMs: number) => void): Promise<T> {
  for (let failures = 0; ; ) {
    try {
      return await attempt();
    } catch (err) {
      failures++;
      if (!isRetryable(err) || failures >= retry.attempts) throw err;
      const delayMs = Math.max(retryAfterMsOf(err) ?? 0, Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (failures - 1)));
      onRetry?.(err, delayMs);
      await sleep(delayMs);
    }
  }
}

export interface UploadOptions {
  api: ApiClients;
  /** The tunnel to use; called again after a failure (a reconnect needs a new tunnel). */
  session: () => Promise<string>;
  localPath: string;
  remotePath: string;
  overwrite?: boolean;
  /** Keep the replaced file as a backup; absent: the agent's setting. */
  keepBackup?: boolean;
  /** Resume this upload instead of starting one. */
  uploadId?: string;
  /**
   * Known SHA-256 of the local file, declared at the start. Absent: the file is
   * hashed as it is sent and the hash goes with FinishUpload (or, for an agent
   * too old for that, the file is read and hashed before the start).
   */
  sha256?: string;
  chunkBytes?: number;
  /** UploadChunk calls in flight. */
  depth?: number;
  /** Send the bytes over the server's raw bulk path (PUT /transfer/uploads/…) instead of UploadChunk calls. */
  bulk?: BulkEndpoint;
  retry?: RetryPolicy;
  onStarted?: (uploadId: string) => void;
  onProgress?: (p: TransferProgress) => void;
  onRetry?: (err: unknown, delayMs: number) => void;
}

/** The local file changed while it was being sent: what arrived is not one version of it, so nothing is finished. */
async function requireUnchanged(path: string, before: Stats): Promise<void> {
  const now = await stat(path);
  if (now.size !== before.size || now.mtimeMs !== before.mtimeMs)
    throw new GuruError("conflict", `${path} changed while being uploaded (size or modification time); nothing was replaced, upload it again`, {
      metadata: { path },
    });
}

export async function uploadFile(o: UploadOptions) {
  const before = await stat(o.localPath);
  const size = before.size;
  let declared = o.sha256;
  const chunkBytes = o.chunkBytes ?? defaultUploadChunkBytes;
  const depth = o.depth ?? 2;
  let uploadId = o.uploadId;
  const free: Buffer[] = [];
  const file = await open(o.localPath, "r");
  // Without a declared hash, the bytes are hashed as they go out.
  let sending = declared === undefined ? createSendingHash(file) : undefined;
  const startUpload = async (sessionId: string) => {
    const request = { sessionId, path: o.remotePath, size: BigInt(size), overwrite: o.overwrite ?? false, keepBackup: o.keepBackup };
    try {
      return await o.api.files.startUpload({ ...request, sha256: declared ?? "" });
    } catch (err) {
      if (declared !== undefined || !(err instanceof ConnectError) || errorInfoOf(err)?.reason !== "AGENT_NEEDS_SHA256_AT_START") throw err;
      // An agent older than hashing at finish: hash the file first, as such agents need.
      declared = await sha256OfFile(o.localPath);
      sending = undefined;
      return o.api.files.startUpload({ ...request, sha256: declared });
    }
  };
  try {
    return await withRetries(
      o.retry ?? defaultRetry,
      async () => {
        const sessionId = await o.session();
        let offset: number;
        if (uploadId === undefined) {
          const started = await startUpload(sessionId);
          uploadId = started.uploadId;
          offset = Number(started.committedOffset);
          o.onStarted?.(uploadId);
        } else {
          const u = await o.api.files.getUpload({ uploadId });
          if (u.status !== UploadStatus.ACTIVE)
            throw new GuruError("failed_precondition", `upload ${uploadId} is ${UploadStatus[u.status].toLowerCase()}; start again without --resume`, {
              reason: "UPLOAD_NOT_ACTIVE",
              metadata: { uploadId, status: UploadStatus[u.status].toLowerCase() },
            });
          if (Number(u.size) !== size)
            throw new GuruError("invalid", `upload ${uploadId} is for ${u.size} bytes, the local file has ${size}; start again without --resume`, {
              metadata: { uploadId, size: u.size },
            });
          offset = Number(u.committedOffset);
        }
        const id = uploadId;
        await sending?.catchUp(offset);
        o.onProgress?.({ done: offset, total: size });
        const inflight = new Set<Promise<unknown>>();
        let failed: unknown;
        while (o.bulk && offset < size) {
          const end = Math.min(size, offset + bulkSegmentBytes);
          const r = await putUploadRange(o.bulk, { uploadId: id, localPath: o.localPath, start: offset, end, size, onRead: sending?.sent });
          o.onProgress?.({ done: r.receivedOffset, total: size });
          offset = end;
        }
        while (offset < size && failed === undefined) {
          const n = Math.min(chunkBytes, size - offset);
          // A buffer is reused only once its call has settled (at most `depth` exist):
          // fresh 8 MiB buffers per call cost page faults and full GCs.
          const buffer = free.pop() ?? Buffer.allocUnsafe(chunkBytes);
          const data = buffer.subarray(0, n);
          const { bytesRead } = await file.read(data, 0, n, offset);
          if (bytesRead !== n) throw new GuruError("conflict", `${o.localPath} changed while being uploaded`);
          sending?.sent(offset, data);
          const call = o.api.files.uploadChunk({ uploadId: id, offset: BigInt(offset), data }).then(
            (r) => o.onProgress?.({ done: Number(r.receivedOffset), total: size }),
            (err: unknown) => (failed ??= err),
          );
          offset += n;
          inflight.add(call);
          void call.finally(() => {
            inflight.delete(call);
            free.push(buffer);
          });
          if (inflight.size >= depth) await Promise.race(inflight);
        }
        await Promise.all(inflight);
        if (failed !== undefined) throw failed;
        await requireUnchanged(o.localPath, before);
        const done = await o.api.files.finishUpload({ uploadId: id, sha256: sending?.digest(size) ?? "" });
        o.onProgress?.({ done: size, total: size });
        return { uploadId: id, size: Number(done.size), sha256: done.sha256, backupPath: done.backupPath, path: done.path };
      },
      o.onRetry,
    );
  } finally {
    await file.close();
  }
}

export interface DownloadOptions {
  api: ApiClients;
  session: () => Promise<string>;
  remotePath: string;
  localPath: string;
  /** Continue `<localPath>.guru-part` from its length instead of starting over. */
  resume?: boolean;
  /** Receive the bytes over the server's raw bulk path (GET /transfer/download) instead of ReadFile. */
  bulk?: BulkEndpoint;
  retry?: RetryPolicy;
  onProgress?: (p: TransferProgress) => void;
  onRetry?: (err: unknown, delayMs: number) => void;
}

export const partSuffix = ".guru-part";

/** Bytes of a ReadFile download written out but not yet on disk, at most (the bulk path holds only its writer's buffers). */
const maxPendingWriteBytes = 16 * 1024 * 1024;

async function writeAt(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let written = 0; written < data.byteLength; ) written += (await file.write(data, written, data.byteLength - written, position + written)).bytesWritten;
}

/** Positioned writes in flight, with their total size; a failed write fails the next drain. */
function createWriteQueue(onWritten: (bytes: number) => void) {
  const pending = new Map<Promise<void>, number>();
  let pendingBytes = 0;
  let failure: unknown;
  return {
    get pendingBytes() {
      return pendingBytes;
    },
    add(write: Promise<void>, size: number) {
      const tracked = write.then(
        () => onWritten(size),
        (err: unknown) => {
          failure ??= err;
        },
      );
      pending.set(tracked, size);
      pendingBytes += size;
      void tracked.finally(() => {
        pendingBytes -= pending.get(tracked) ?? 0;
        pending.delete(tracked);
      });
    },
    async drain(downToBytes: number) {
      while (pendingBytes > downToBytes && pending.size > 0) await Promise.race(pending.keys());
      if (downToBytes === 0) await Promise.all(pending.keys());
      if (failure !== undefined) throw failure;
    },
  };
}

export async function downloadFile(o: DownloadOptions) {
  const partPath = o.localPath + partSuffix;
  // Not "a+" for a resume: with O_APPEND, Linux ignores the position of a
  // write, and the positioned writes in flight may complete in any order.
  if (o.resume) await (await open(partPath, "a")).close();
  const file = await open(partPath, o.resume ? "r+" : "w+");
  // The disk takes the bytes as they arrive, so the sync before the rename is short.
  const writeBehind = createWriteBehindSync(file);
  let mimeType = "";
  let remotePath = o.remotePath;
  try {
    // Every attempt after the first continues from what is on disk.
    let fresh = !o.resume;
    const result = await withRetries(
      o.retry ?? defaultRetry,
      async () => {
        const start = fresh ? 0 : (await file.stat()).size;
        fresh = false;
        const sessionId = await o.session();
        const hash = createHash("sha256");
        let position = start;
        let total = start;
        if (o.bulk) {
          // The pieces are views into the connection's read buffer: hashed while
          // still in cache, then copied into the writer's buffers before the next read.
          const writer = createPooledFileWriter({
            write: (data, at) => writeAt(file, data, at),
            position: start,
            maxPieceBytes: maxDownloadPieceBytes,
            onWritten: writeBehind.wrote,
          });
          let summary: { sha256: string; bytesSent: number };
          try {
            summary = await getDownload(o.bulk, {
              sessionId,
              path: o.remotePath,
              offset: start,
              onInfo: (info) => {
                total = info.size;
                mimeType = info.mimeType;
                remotePath = info.path;
                o.onProgress?.({ done: position, total });
              },
              onData: (view) => {
                hash.update(view);
                const wait = writer.take(view);
                position += view.byteLength;
                o.onProgress?.({ done: position, total });
                return wait;
              },
            });
          } catch (err) {
            // The bytes that arrived are good: on disk, the next attempt continues after them.
            await writer.flush().catch(() => {});
            throw err;
          }
          await writer.flush();
          const sha = hash.digest("hex");
          if (summary.sha256 !== sha || summary.bytesSent !== position - start) {
            await file.truncate(start);
            throw new GuruError("data_loss", `download of ${o.remotePath} corrupted: the agent sent SHA-256 ${summary.sha256}, received ${sha}`);
          }
          return { size: total, rangeSha256: sha, resumedFrom: start };
        }
        const writes = createWriteQueue(writeBehind.wrote);
        for await (const res of o.api.files.readFile({ sessionId, path: o.remotePath, offset: BigInt(start) })) {
          const event = res.event;
          if (event.case === "info") {
            total = Number(event.value.size);
            mimeType = event.value.mimeType;
            remotePath = event.value.path;
            o.onProgress?.({ done: position, total });
          } else if (event.case === "chunk") {
            if (Number(event.value.offset) !== position) throw new GuruError("data_loss", `expected bytes at ${position}, got ${event.value.offset}`);
            const data = event.value.data;
            hash.update(data);
            // Writes overlap with receiving the next chunks (bounded), so the
            // disk and the network each keep going while the other waits.
            writes.add(writeAt(file, data, position), data.byteLength);
            if (writes.pendingBytes > maxPendingWriteBytes) await writes.drain(maxPendingWriteBytes / 2);
            position += data.byteLength;
            o.onProgress?.({ done: position, total });
          } else if (event.case === "summary") {
            await writes.drain(0);
            const sha = hash.digest("hex");
            if (event.value.sha256 !== sha || Number(event.value.bytesSent) !== position - start) {
              await file.truncate(start);
              throw new GuruError("data_loss", `download of ${o.remotePath} corrupted: the agent sent SHA-256 ${event.value.sha256}, received ${sha}`);
            }
            return { size: Number(event.value.size), rangeSha256: sha, resumedFrom: start };
          }
        }
        throw new ConnectError("the download ended without a summary", Code.Unavailable);
      },
      o.onRetry,
    );
    await writeBehind.settle();
    await file.sync();
    await file.close();
    await rename(partPath, o.localPath);
    return { ...result, mimeType, remotePath };
  } finally {
    await file.close().catch(() => {});
  }
}
