// Resumable, verified uploads. open() starts an upload or resumes one with
// the same uploadId (after a reconnect or an agent restart): the temp file's
// real length is where the resume starts, and its bytes are re-hashed once to
// rebuild the running SHA-256. The record in stateDir only says which temp
// file belongs to which target.
import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { lstat, open, rm, stat, type FileHandle } from "node:fs/promises";
import { GuruError } from "../../lib/errors.ts";
import { isSha256Hex } from "../../lib/sha256-hex.ts";
import type { Logger } from "../../lib/logging.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { errnoCode, fsError } from "./file-entry.ts";
import { platformHandleChecks, verifyHandleInside, type HandleChecks } from "./open-file.ts";
import { checkUploadId, createUploadStateStore, tempPathFor, type UploadRecord } from "./upload-state.ts";
import { createUploadWriter, type UploadWriter, type UploadWriterHooks } from "./upload-writer.ts";

export type { UploadWriter } from "./upload-writer.ts";

/** Re-hashing a resumed prefix reads this much at a time: large enough to stream fast, small enough to stay bounded. */
const rehashChunkBytes = 1024 * 1024;
// Temp files are never followed through a symlink; O_CREAT with an existing name reuses it (a resume).
const tempFlags = constants.O_RDWR | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);

export interface UploadManagerDeps {
  /** The agent's private directory for upload records. */
  stateDir: string;
  logger: Logger;
  keepBackupDefault: boolean;
  /** A partial not written to for this long is removed by sweepAbandoned(). */
  abandonedAfterMs: number;
  /**
   * Permission bits of a file an upload creates (a replaced file keeps its own,
   * less setuid/setgid/sticky). The agent passes 0644 less the umask it was
   * started with; the default is 0644.
   */
  newFileMode?: number;
  /** Tests only: the clock. */
  now?: () => number;
  /** Tests only: how opened temp files are checked. */
  handleChecks?: HandleChecks;
  /** Tests only: hooks into the final placement. */
  writerHooks?: UploadWriterHooks;
}

export interface OpenUploadRequest {
  uploadId: string;
  path: string;
  size: number;
  /** Hex SHA-256 of the whole file, declared by the sender; empty when it comes with finish instead. */
  sha256: string;
  overwrite: boolean;
  /** Absent → keepBackupDefault. */
  keepBackup?: boolean;
}

export interface UploadManager {
  open(guard: PathGuard, request: OpenUploadRequest): Promise<UploadWriter>;
  /** Removes partials (temp + record) idle for abandonedAfterMs; returns how many. */
  sweepAbandoned(): Promise<number>;
}

function checkRequest(request: OpenUploadRequest): string {
  checkUploadId(request.uploadId);
  if (!Number.isSafeInteger(request.size) || request.size < 0) {
    throw new GuruError("invalid", "size must be a non-negative integer", { details: { size: request.size } });
  }
  const sha256 = typeof request.sha256 === "string" ? request.sha256.toLowerCase() : "";
  if (sha256 !== "" && !isSha256Hex(sha256)) throw new GuruError("invalid", "sha256 must be 64 hex digits", { details: { sha256: request.sha256 } });
  return sha256;
}

async function rehashPrefix(handle: FileHandle, length: number): Promise<Hash> {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(Math.min(rehashChunkBytes, Math.max(length, 1)));
  let position = 0;
  while (position < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash;
}

export function createUploadManager(deps: UploadManagerDeps): UploadManager {
  const now = deps.now ?? Date.now;
  const store = createUploadStateStore(deps.stateDir);
  const active = new Map<string, UploadWriter>();
  // One open or sweep at a time per uploadId.
  const locks = new Map<string, Promise<unknown>>();

  function withIdLock<T>(uploadId: string, fn: () => Promise<T>): Promise<T> {
    const previous = locks.get(uploadId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => {});
    locks.set(uploadId, settled);
    void settled.then(() => {
      if (locks.get(uploadId) === settled) locks.delete(uploadId);
    });
    return run;
  }

  async function openLocked(guard: PathGuard, request: OpenUploadRequest, sha256: string): Promise<UploadWriter> {
    const { uploadId } = request;
    const targetPath = await guard.resolve(request.path, { mustExist: false });
    const existing = await lstat(targetPath).catch((err: unknown) => {
      if (errnoCode(err) === "ENOENT") return undefined;
      throw fsError(err, request.path, "check");
    });
    if (existing?.isDirectory()) throw new GuruError("invalid", `"${request.path}" is a directory`, { details: { path: targetPath } });
    if (existing && !existing.isFile()) throw new GuruError("invalid", `"${request.path}" is not a regular file`, { details: { path: targetPath } });
    if (existing && !request.overwrite) {
      throw new GuruError("conflict", `"${request.path}" exists and overwrite is false`, {
        reason: "FILE_EXISTS",
        metadata: { path: request.path },
        details: { path: targetPath },
      });
    }

    const tempPath = tempPathFor(targetPath, uploadId);
    const previous = await store.read(uploadId);
    if (previous && (previous.targetPath !== targetPath || previous.size !== request.size || previous.sha256 !== sha256)) {
      throw new GuruError("conflict", `upload ${uploadId} was started for another file (${previous.targetPath}, ${previous.size} bytes)`, {
        details: { uploadId, path: previous.targetPath, size: previous.size },
      });
    }
    // A reconnect may reopen an upload whose old link has not noticed it is dead: the newer open wins.
    await active.get(uploadId)?.close();
    const record: UploadRecord = previous
      ? { ...previous, tempPath, updatedMs: now() }
      : { version: 1, uploadId, targetPath, tempPath, size: request.size, sha256, createdMs: now(), updatedMs: now() };
    // The record goes first: a temp file on disk always has a record, so sweepAbandoned() can find it.
    await store.write(record);

    const checks = deps.handleChecks ?? platformHandleChecks;
    await checks.beforeOpen?.(tempPath);
    let handle: FileHandle;
    try {
      // A new upload truncates a stale temp of the same name (its record was lost, so its bytes are unverifiable).
      // 0600 until placed, whatever the umask: the bytes are the technician's until the file is in place.
      handle = await open(tempPath, previous ? tempFlags : tempFlags | constants.O_TRUNC, 0o600);
    } catch (err) {
      throw fsError(err, request.path, "create the upload of");
    }
    try {
      const tempStats = await handle.stat();
      if (!tempStats.isFile()) throw new GuruError("conflict", `upload temp file "${tempPath}" is not a regular file`, { details: { tempPath } });
      await checks.afterOpen?.(tempPath);
      await verifyHandleInside(guard, handle, tempPath, checks);
      // A temp file left by an older agent (or made by someone else) becomes private too.
      if ((tempStats.mode & 0o7777) !== 0o600) await handle.chmod(0o600);
      let length = tempStats.size;
      if (length > record.size) {
        deps.logger.warn({ uploadId, tempPath, length, size: record.size }, "upload temp file longer than declared; starting over");
        await handle.truncate(0);
        length = 0;
      }
      const hash = await rehashPrefix(handle, length);
      const writer = createUploadWriter({
        record,
        guard,
        requestedPath: request.path,
        handle,
        hash,
        committedOffset: length,
        overwrite: request.overwrite,
        keepBackup: request.keepBackup ?? deps.keepBackupDefault,
        store,
        logger: deps.logger,
        onDone: () => {
          if (active.get(uploadId) === writer) active.delete(uploadId);
        },
        superseded: () => active.has(uploadId) && active.get(uploadId) !== writer,
        newFileMode: (deps.newFileMode ?? 0o644) & 0o777,
        hooks: deps.writerHooks,
      });
      active.set(uploadId, writer);
      deps.logger.info({ uploadId, path: targetPath, size: record.size, resumeAt: length }, previous ? "upload resumed" : "upload started");
      return writer;
    } catch (err) {
      await handle.close().catch(() => {});
      throw fsError(err, request.path, "open the upload of");
    }
  }

  async function sweepOne(uploadId: string, record: UploadRecord | undefined, fileMtimeMs: number): Promise<boolean> {
    if (active.has(uploadId)) return false;
    let lastActiveMs = record ? record.updatedMs : fileMtimeMs;
    const tempMtimeMs = record ? (await stat(record.tempPath).catch(() => undefined))?.mtimeMs : undefined;
    if (tempMtimeMs !== undefined) lastActiveMs = Math.max(lastActiveMs, tempMtimeMs);
    if (now() - lastActiveMs < deps.abandonedAfterMs) return false;
    // Delete only the temp file this record could have made, whatever else the record says.
    if (record && record.tempPath === tempPathFor(record.targetPath, record.uploadId)) {
      await rm(record.tempPath, { force: true });
    }
    await store.remove(uploadId);
    deps.logger.info({ uploadId, tempPath: record?.tempPath }, "abandoned upload removed");
    return true;
  }

  return {
    async open(guard, request) {
      const sha256 = checkRequest(request);
      return withIdLock(request.uploadId, () => openLocked(guard, request, sha256));
    },
    async sweepAbandoned() {
      let removed = 0;
      for (const { uploadId, record, fileMtimeMs } of await store.list()) {
        if (await withIdLock(uploadId, () => sweepOne(uploadId, record, fileMtimeMs))) removed++;
      }
      return removed;
    },
  };
}
