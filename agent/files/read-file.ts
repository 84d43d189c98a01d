// Downloads: a byte range of one file, in chunks the consumer pulls. The file
// is opened once, right after the guard's check, and read only through that
// handle (see open-file.ts). No read-ahead: the next chunk is read when the
// consumer asks for it, so memory is one chunk whatever the file size, and the
// wire's credit flow control is what paces the disk.
import { createHash } from "node:crypto";
import { GuruError } from "../../lib/errors.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { fsError } from "./file-entry.ts";
import { mimeTypeOfHandle } from "./mime.ts";
import { openRegularFile, type HandleChecks } from "./open-file.ts";

/** 256 KiB: reading 1 GiB measured 1.8 GB/s at this size against 1.1 GB/s at 64 KiB on a 2-core machine, and it is a good wire chunk. */
const defaultReadChunkBytes = 256 * 1024;
const maxReadChunkBytes = 4 * 1024 * 1024;

export interface ReadRangeRequest {
  path: string;
  offset?: number;
  /** Bytes to read; absent or 0 → to the end of the file (0 is what an unset uint64 looks like on the wire). Clamped to the end. */
  length?: number;
}

export interface ReadRangeOptions {
  /** Tests only: how the opened file is checked (defaults to this platform's way). */
  handleChecks?: HandleChecks;
  chunkBytes?: number;
  signal?: AbortSignal;
  /**
   * Read every chunk into the same buffer: for a consumer that is done with a
   * chunk once it asks for the next (e.g. it copies it into a frame). Saves a
   * fresh buffer per chunk (page faults, and GC driven by external memory).
   */
  reuseBuffer?: boolean;
}

export interface ReadRangeSummary {
  /** The file's size when it was opened. */
  size: number;
  bytesSent: number;
  /** Hex SHA-256 of the bytes yielded so far (all of them once chunks() has finished). */
  sha256: string;
}

export interface FileRangeReader {
  info: { path: string; size: number; mimeType: string };
  /** Iterable once. Closes the file when done, on error, on abort or when the consumer stops early. */
  chunks(): AsyncIterable<{ offset: number; data: Uint8Array }>;
  summary(): ReadRangeSummary;
  /** Closes the file without reading, for a consumer that never iterates. Idempotent. */
  close(): Promise<void>;
}

function checkNonNegativeInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new GuruError("invalid", `${name} must be a non-negative integer`, { details: { [name]: value } });
  }
}

export async function readFileRange(guard: PathGuard, request: ReadRangeRequest, options: ReadRangeOptions = {}): Promise<FileRangeReader> {
  const offset = request.offset ?? 0;
  checkNonNegativeInteger("offset", offset);
  if (request.length !== undefined) checkNonNegativeInteger("length", request.length);
  const chunkBytes = options.chunkBytes ?? defaultReadChunkBytes;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > maxReadChunkBytes) {
    throw new GuruError("invalid", `chunkBytes must be between 1 and ${maxReadChunkBytes}`, { details: { chunkBytes } });
  }
  options.signal?.throwIfAborted();

  const { realPath, handle, stats } = await openRegularFile(guard, request.path, options.handleChecks);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  const size = stats.size;
  let mimeType: string;
  try {
    if (offset > size) {
      throw new GuruError("invalid", `offset ${offset} is beyond the end of "${request.path}" (${size} bytes)`, { metadata: { field: "offset", size } });
    }
    mimeType = await mimeTypeOfHandle(realPath, handle);
  } catch (err) {
    await close();
    throw err;
  }
  const end = !request.length ? size : Math.min(size, offset + request.length);
  const hash = createHash("sha256");
  let bytesSent = 0;
  let iterated = false;

  async function* generate(): AsyncGenerator<{ offset: number; data: Uint8Array }> {
    try {
      let position = offset;
      let shared: Buffer | undefined;
      while (position < end) {
        if (options.signal?.aborted) throw new GuruError("canceled", "the download was canceled", { cause: options.signal.reason });
        // A fresh buffer per chunk unless the consumer said otherwise: it may still hold the previous one (queued on a socket).
        const n = Math.min(chunkBytes, end - position);
        if (options.reuseBuffer) shared ??= Buffer.allocUnsafe(n);
        const data = shared ? shared.subarray(0, n) : Buffer.allocUnsafe(n);
        let filled = 0;
        while (filled < data.length) {
          const { bytesRead } = await handle.read(data, filled, data.length - filled, position + filled).catch((err: unknown) => {
            throw fsError(err, request.path, "read");
          });
          if (bytesRead === 0) {
            throw new GuruError("conflict", `"${request.path}" was truncated while being read (at byte ${position + filled} of ${size})`, {
              reason: "FILE_CHANGED",
              metadata: { path: request.path },
              details: { path: realPath, size, offset: position + filled },
            });
          }
          filled += bytesRead;
        }
        hash.update(data);
        bytesSent += data.length;
        const chunk = { offset: position, data };
        position += data.length;
        yield chunk;
      }
    } finally {
      await close();
    }
  }

  return {
    info: { path: realPath, size, mimeType },
    chunks() {
      if (iterated) throw new GuruError("failed_precondition", "chunks() can be iterated only once");
      iterated = true;
      return generate();
    },
    // copy(): the running hash stays usable, so summary() may be asked mid-transfer.
    summary: () => ({ size, bytesSent, sha256: hash.copy().digest("hex") }),
    close,
  };
}
