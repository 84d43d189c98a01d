// One upload in progress: appends to the temp file at the committed offset,
// hashes as it goes, and on finish verifies size and SHA-256 before anything
// at the target changes. Calls are serialised (a pipelined write waits for the
// previous one), so the offset check and the hash always see one order.
import { constants, type Stats } from "node:fs";
import { copyFile, link, lstat, open, rename, rm, unlink, type FileHandle } from "node:fs/promises";
import type { Hash } from "node:crypto";
import path from "node:path";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { errnoCode, fsError } from "./file-entry.ts";
import type { UploadRecord, UploadStateStore } from "./upload-state.ts";

export interface UploadWriter {
  /** Bytes in the temp file and in the running hash: a resume starts here. */
  readonly committedOffset: number;
  write(offset: number, data: Uint8Array): Promise<number>;
  finish(): Promise<{ size: number; sha256: string; backupPath: string; path: string }>;
  /** Removes the temp file and the record. */
  abort(): Promise<void>;
  /** Leaves the partial in place for a resume. */
  close(): Promise<void>;
}

export interface UploadWriterDeps {
  record: UploadRecord;
  guard: PathGuard;
  /** The path as the client named it, re-checked at finish. */
  requestedPath: string;
  handle: FileHandle;
  hash: Hash;
  committedOffset: number;
  overwrite: boolean;
  keepBackup: boolean;
  store: UploadStateStore;
  logger: Logger;
  /** Called once when the writer stops being usable (finished, aborted, closed, failed). */
  onDone: () => void;
  /** True once a newer open of the same upload took over: this writer must not touch its files any more. */
  superseded: () => boolean;
}

// Hard links are unsupported on some filesystems (FAT, some network shares); then we copy or rename.
const noLinkCodes = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"]);

/** Sortable and valid in Windows names: 20250102T030405678Z. */
function backupStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** Keeps the old file as `<name>.guru-backup-<stamp>`: a hard link (no copy, and the target never goes missing), else a copy. */
async function keepBackupOf(targetPath: string): Promise<string> {
  const base = `${targetPath}.guru-backup-${backupStamp(Date.now())}`;
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? base : `${base}-${n}`;
    try {
      await link(targetPath, candidate);
      return candidate;
    } catch (err) {
      const code = errnoCode(err);
      if (code === "EEXIST") continue;
      if (!noLinkCodes.has(code ?? "")) throw err;
      try {
        await copyFile(targetPath, candidate, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
        return candidate;
      } catch (copyErr) {
        if (errnoCode(copyErr) === "EEXIST") continue;
        throw copyErr;
      }
    }
  }
}

/** Makes the rename itself durable; not possible on Windows (directories cannot be opened), where NTFS journals it. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY);
    await handle.sync();
  } catch {
    // best effort: EISDIR/EPERM on Windows, EINVAL on some network filesystems
  } finally {
    await handle?.close().catch(() => {});
  }
}

export function createUploadWriter(deps: UploadWriterDeps): UploadWriter {
  const { record, handle, hash, store, logger } = deps;
  const log = logger.child({ uploadId: record.uploadId, path: record.targetPath });
  let committed = deps.committedOffset;
  let status: "open" | "closed" | "finished" | "aborted" | "failed" = "open";
  let handleOpen = true;
  let tail: Promise<unknown> = Promise.resolve();

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  }
  function ensureOpen(): void {
    if (status !== "open") {
      throw new GuruError("failed_precondition", `upload ${record.uploadId} is ${status}; open it again to resume`, { reason: "UPLOAD_NOT_ACTIVE", metadata: { uploadId: record.uploadId, status } });
    }
  }
  async function closeHandle(): Promise<void> {
    if (!handleOpen) return;
    handleOpen = false;
    await handle.close();
  }
  async function end(next: typeof status): Promise<void> {
    status = next;
    await closeHandle().catch((err: unknown) => log.warn({ err }, "closing upload temp file failed"));
    deps.onDone();
  }

  async function writeAll(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  async function write(offset: number, data: Uint8Array): Promise<number> {
    ensureOpen();
    if (offset !== committed) {
      throw new GuruError("failed_precondition", `expected offset ${committed}`, { reason: "UPLOAD_OFFSET_MISMATCH", metadata: { expectedOffset: committed, offset } });
    }
    if (committed + data.length > record.size) {
      throw new GuruError("too_large", `upload is ${record.size} bytes; ${committed + data.length} would exceed it`, {
        metadata: { size: record.size, end: committed + data.length },
        details: { size: record.size, offset, length: data.length },
      });
    }
    if (data.length === 0) return committed;
    // The disk write runs on the threadpool while this thread hashes the same bytes.
    const writing = writeAll(data, committed);
    hash.update(data);
    try {
      await writing;
    } catch (err) {
      // The hash already holds these bytes: only a reopen (which re-hashes the file) can continue.
      await handle.truncate(committed).catch(() => {});
      await end("failed");
      throw fsError(err, record.targetPath, "write the upload of");
    }
    committed += data.length;
    return committed;
  }

  async function finish(): Promise<{ size: number; sha256: string; backupPath: string; path: string }> {
    ensureOpen();
    const details = { uploadId: record.uploadId, path: record.targetPath };
    if (committed !== record.size) {
      // Short, not wrong: the bytes so far are kept so the client can resume from committedOffset.
      throw new GuruError("data_loss", `upload incomplete: expected ${record.size} bytes, got ${committed}; nothing was replaced`, {
        reason: "UPLOAD_SIZE_MISMATCH",
        metadata: { size: record.size, expectedOffset: committed },
        details: { ...details, size: record.size, committedOffset: committed },
      });
    }
    const sha256 = hash.copy().digest("hex");
    if (sha256 !== record.sha256) {
      // Wrong bytes somewhere, and we cannot tell where: discard them so the upload can never be finished with them.
      await end("failed");
      await rm(record.tempPath, { force: true });
      await store.remove(record.uploadId);
      log.warn({ expected: record.sha256, actual: sha256 }, "upload checksum mismatch; partial discarded");
      throw new GuruError("data_loss", `SHA-256 mismatch: expected ${record.sha256}, got ${sha256}; nothing was replaced`, {
        reason: "UPLOAD_CHECKSUM_MISMATCH",
        metadata: { expectedSha256: record.sha256, actualSha256: sha256 },
        details: { ...details, expectedSha256: record.sha256, actualSha256: sha256 },
      });
    }
    try {
      // The target may have changed since open (a directory swapped for a symlink, the file created meanwhile).
      const target = await deps.guard.resolve(deps.requestedPath, { mustExist: false });
      if (target !== record.targetPath) {
        throw new GuruError("conflict", `"${deps.requestedPath}" now resolves to "${target}", not "${record.targetPath}"; nothing was replaced`, { details, reason: "FILE_CHANGED", metadata: { path: deps.requestedPath } });
      }
      const old = await lstatOrUndefined(record.targetPath);
      if (old?.isDirectory()) throw new GuruError("invalid", `"${deps.requestedPath}" is now a directory; nothing was replaced`, { details });
      if (old && !deps.overwrite) {
        throw new GuruError("conflict", `"${deps.requestedPath}" exists and overwrite is false; nothing was replaced`, { details, reason: "FILE_EXISTS", metadata: { path: deps.requestedPath } });
      }
      if (old?.isFile()) await handle.chmod(old.mode & 0o7777);
      // Data on disk before the name points at it: after a power cut the target is old or new, never empty.
      await handle.sync();
      await closeHandle();

      const backupPath = deps.keepBackup && old?.isFile() ? await keepBackupOf(record.targetPath) : "";
      await placeFile();
      await syncDirectory(path.dirname(record.targetPath));
      await store.remove(record.uploadId);
      await end("finished");
      log.info({ size: record.size, backupPath }, "upload finished");
      return { size: record.size, sha256, backupPath, path: record.targetPath };
    } catch (err) {
      // Verified bytes stay in the temp file with their record: a new open + finish can complete them.
      if (!handleOpen) await end("closed");
      throw fsError(err, record.targetPath, "replace");
    }
  }

  /** rename() replaces a symlink swapped in at the target rather than following it. Without overwrite, link() refuses atomically if a file appeared. */
  async function placeFile(): Promise<void> {
    if (deps.overwrite) {
      await rename(record.tempPath, record.targetPath);
      return;
    }
    try {
      await link(record.tempPath, record.targetPath);
    } catch (err) {
      const code = errnoCode(err);
      if (code === "EEXIST") {
        throw new GuruError("conflict", `"${deps.requestedPath}" was created meanwhile and overwrite is false; nothing was replaced`, {
          reason: "FILE_EXISTS",
          metadata: { path: deps.requestedPath },
          details: { path: record.targetPath },
        });
      }
      if (!noLinkCodes.has(code ?? "")) throw err;
      await rename(record.tempPath, record.targetPath);
      return;
    }
    await unlink(record.tempPath);
  }

  return {
    get committedOffset() {
      return committed;
    },
    write: (offset, data) => serial(() => write(offset, data)),
    finish: () => serial(finish),
    abort: () =>
      serial(async () => {
        if (status === "finished") return;
        if (deps.superseded()) {
          throw new GuruError("failed_precondition", `upload ${record.uploadId} was reopened elsewhere; abort it there`, { reason: "UPLOAD_NOT_ACTIVE", metadata: { uploadId: record.uploadId } });
        }
        if (status === "open") await end("aborted");
        status = "aborted";
        await rm(record.tempPath, { force: true });
        await store.remove(record.uploadId);
        log.info({ committedOffset: committed }, "upload aborted");
      }),
    close: () =>
      serial(async () => {
        if (status === "open") await end("closed");
      }),
  };
}
