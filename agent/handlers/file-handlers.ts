// File requests on a channel → the files domain → typed results. Transfers
// move as channel data within the peer's credit, so memory stays bounded by
// the window whatever the file size.
import { create } from "@bufbuild/protobuf";
import {
  FileReadInfoSchema,
  FileReadResultSchema,
  FileType,
  FileWriteProgressSchema,
  FileWriteResultSchema,
  ListDirectoryResultSchema,
  StatResultSchema,
  type FileEntry as WireFileEntry,
  type FileReadRequest,
  type FileWriteRequest,
  type ListDirectoryRequest,
  type StatRequest,
  FileEntrySchema,
} from "../../gen/guru/wire/v1/files_pb.js";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { Channel } from "../../lib/wire/link.ts";
import { listDirectory } from "../files/list-directory.ts";
import { readFileRange } from "../files/read-file.ts";
import { statPath } from "../files/stat-path.ts";
import type { FileEntry } from "../files/types.ts";
import { requireCapability } from "../policy/local-policy.ts";
import type { HandlerContext } from "./dispatch.ts";

const fileTypes: Record<FileEntry["type"], FileType> = {
  file: FileType.FILE,
  dir: FileType.DIR,
  symlink: FileType.SYMLINK,
  other: FileType.OTHER,
};

function toWireEntry(entry: FileEntry): WireFileEntry {
  return create(FileEntrySchema, {
    name: entry.name,
    type: fileTypes[entry.type],
    size: BigInt(entry.size),
    mode: entry.mode,
    modifiedUnixMs: BigInt(Math.trunc(entry.modifiedMs)),
  });
}

/** Not awaited: the answer does not wait for the local log. record() logs its own failures and never rejects. */
function logOperation(ctx: HandlerContext, entry: Parameters<HandlerContext["oplog"]["record"]>[0]): void {
  ctx.oplog.record(entry).catch((err: unknown) => ctx.logger.warn({ err }, "could not write the operation log"));
}

/** Checks the tunnel and capability, runs the operation, and logs it locally either way. */
async function audited<T>(ctx: HandlerContext, sessionId: string, operation: string, detail: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
  const tunnel = ctx.tunnel.require(sessionId);
  try {
    requireCapability(ctx.policy, "files");
    const result = await run();
    logOperation(ctx, { technicianId: tunnel.technicianId, sessionId, operation, detail, result: "ok" });
    return result;
  } catch (err) {
    const error = toGuruError(err);
    logOperation(ctx, {
      technicianId: tunnel.technicianId,
      sessionId,
      operation,
      detail: { ...detail, error: error.message },
      result: error.kind === "denied" ? "refused" : "failed",
    });
    throw error;
  }
}

export async function handleStat(channel: Channel, req: StatRequest, ctx: HandlerContext): Promise<void> {
  const stat = await audited(ctx, req.sessionId, "stat", { path: req.path }, () => statPath(ctx.pathGuard, req.path));
  channel.sendResult({ case: "stat", value: create(StatResultSchema, { path: stat.path, entry: toWireEntry(stat.entry), mimeType: stat.mimeType }) });
}

export async function handleListDirectory(channel: Channel, req: ListDirectoryRequest, ctx: HandlerContext): Promise<void> {
  const page = await audited(ctx, req.sessionId, "list", { path: req.path }, () =>
    listDirectory(ctx.pathGuard, { path: req.path, pageSize: req.pageSize || undefined, pageToken: req.pageToken || undefined }),
  );
  channel.sendResult({
    case: "listDirectory",
    value: create(ListDirectoryResultSchema, {
      path: page.path,
      entries: page.entries.map(toWireEntry),
      nextPageToken: page.nextPageToken ?? "",
      totalEntries: page.totalEntries,
    }),
  });
}

/**
 * Download chunks 64 bytes short of the wire chunk: the server re-encodes each
 * as a ReadFileResponse (offset, tags: under 64 bytes), and at that size the
 * message fits the protobuf writer's power-of-two buffer instead of growing it
 * to a zero-filled twice the size for every chunk.
 */
function readChunkBytes(wireChunkBytes: number): number {
  return wireChunkBytes > 4096 ? wireChunkBytes - 64 : wireChunkBytes;
}

export async function handleFileRead(channel: Channel, req: FileReadRequest, ctx: HandlerContext): Promise<void> {
  const detail = { path: req.path, offset: Number(req.offset), length: Number(req.length) };
  await audited(ctx, req.sessionId, "read", detail, async () => {
    const read = await readFileRange(
      ctx.pathGuard,
      { path: req.path, offset: Number(req.offset), length: Number(req.length) },
      // sendData copies each chunk into its frame before it resolves, so one read buffer serves every chunk.
      { chunkBytes: readChunkBytes(ctx.chunkBytes), signal: channel.signal, reuseBuffer: true },
    );
    channel.sendEvent({
      case: "fileReadInfo",
      value: create(FileReadInfoSchema, { path: read.info.path, size: BigInt(read.info.size), mimeType: read.info.mimeType }),
    });
    for await (const chunk of read.chunks()) {
      await channel.sendData(chunk.data, { offset: BigInt(chunk.offset) });
    }
    const summary = read.summary();
    channel.sendResult({
      case: "fileRead",
      value: create(FileReadResultSchema, { size: BigInt(summary.size), bytesSent: BigInt(summary.bytesSent), sha256: summary.sha256 }),
    });
  });
}

/** Bytes of an upload handed to the writer and not yet on disk, at most (two wire frames). */
const maxWritesAheadBytes = 2 * 1024 * 1024;

export async function handleFileWrite(channel: Channel, req: FileWriteRequest, ctx: HandlerContext): Promise<void> {
  const detail = { path: req.path, uploadId: req.uploadId, size: Number(req.size) };
  await audited(ctx, req.sessionId, "upload", detail, async () => {
    const writer = await ctx.uploads.open(ctx.pathGuard, {
      uploadId: req.uploadId,
      path: req.path,
      size: Number(req.size),
      sha256: req.sha256,
      overwrite: req.overwrite,
      keepBackup: req.keepBackup,
    });
    const progress = (committedOffset: number) =>
      channel.sendEvent({ case: "fileWriteProgress", value: create(FileWriteProgressSchema, { committedOffset: BigInt(committedOffset) }) });
    progress(writer.committedOffset);
    let settled = false;
    // Writes are pipelined: the next frame is taken (and credited) while the
    // previous ones are still on their way to disk, so the server never waits
    // for our write + hash to finish before it may send more. The writer runs
    // them in order; at most maxWritesAheadBytes wait, and the first failure
    // ends the upload as before.
    const writing: { done: Promise<void>; bytes: number }[] = [];
    let writingBytes = 0;
    let writeFailure: { error: unknown } | undefined;
    const settleOldest = async () => {
      const oldest = writing.shift();
      if (oldest === undefined) return;
      await oldest.done;
      writingBytes -= oldest.bytes;
    };
    const drain = async (downTo: number) => {
      while (writing.length > 0 && writingBytes > downTo) await settleOldest();
      if (writeFailure) throw writeFailure.error;
    };
    try {
      for await (const message of channel.messages()) {
        if (message.type === "data") {
          if (writeFailure) throw writeFailure.error;
          const done = writer.write(Number(message.offset), message.data).then(progress, (err: unknown) => {
            writeFailure ??= { error: err };
          });
          // Once written (or failed) nothing refers to the bytes: the link may read the next frame into them.
          void done.finally(message.release);
          writing.push({ done, bytes: message.data.byteLength });
          writingBytes += message.data.byteLength;
          await drain(maxWritesAheadBytes);
        } else if (message.type === "event" && message.event.case === "fileWriteFinish") {
          await drain(0);
          const done = await writer.finish(message.event.value.sha256);
          settled = true;
          channel.sendResult({
            case: "fileWrite",
            value: create(FileWriteResultSchema, { size: BigInt(done.size), sha256: done.sha256, backupPath: done.backupPath, path: done.path }),
          });
          return;
        } else if (message.type === "cancel") {
          await drain(0).catch(() => {});
          await writer.abort();
          settled = true;
          throw new GuruError("canceled", `upload ${req.uploadId} aborted: ${message.reason}`);
        }
      }
      await drain(0);
      throw new GuruError("unavailable", "the upload channel ended before it finished");
    } finally {
      // Writes already started land before the writer closes (it serialises them anyway).
      await drain(0).catch(() => {});
      // A dropped link keeps the partial file for a resume.
      if (!settled) await writer.close();
    }
  });
}
