// One upload in progress: appends to the temp file at the committed offset,
// hashes as it goes, and on finish verifies size and SHA-256 before anything
// at the target changes. Calls are serialised (a pipelined write waits for the
// previous one), so the offset check and the hash always see one order.
//
// Modes: the temp file is 0600 while bytes arrive. At finish a replaced file's
// permission bits carry over WITHOUT setuid, setgid and sticky (the content is
// the technician's, not the program that had those bits); a new file gets
// newFileMode. A backup of a file with those bits loses them too.
//
// Short uploads: finishing before all declared bytes are committed is
// failed_precondition (not data loss); the bytes stay for a resume, and the
// server keeps the upload active (server/domain/uploads.ts follows the same rule).
import { constants } from "node:fs";
import { copyFile, link, rename, rm, unlink, type FileHandle } from "node:fs/promises";
import type { Hash } from "node:crypto";
import path from "node:path";
import { GuruError } from "../../lib/errors.ts";
import { isSha256Hex } from "../../lib/sha256-hex.ts";
import type { Logger } from "../../lib/logging.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { createWriteBehindSync } from "../../lib/write-behind-sync.ts";
import { errnoCode, fsError } from "./file-entry.ts";
import { keepBackupOf, lstatOrUndefined, noLinkCodes, sha256Of, specialBits, stripSpecialBits, syncDirectory, syncFile } from "./file-placement.ts";
import type { UploadRecord, UploadStateStore } from "./upload-state.ts";

export interface UploadWriter {
  /** Bytes in the temp file and in the running hash: a resume starts here. */
  readonly committedOffset: number;
  write(offset: number, data: Uint8Array): Promise<number>;
  /** `sha256`: the whole file's hash when the upload was opened without one (else empty, or the same). */
  finish(sha256?: string): Promise<{ size: number; sha256: string; backupPath: string; path: string }>;
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
  /** Permission bits of a file the upload creates. */
  newFileMode: number;
  hooks?: UploadWriterHooks;
}

/** Tests only: a window between the last check of the target and its placement, and the link() call to use. */
export interface UploadWriterHooks {
  beforePlace?(targetPath: string): Promise<void>;
  link?(existingPath: string, newPath: string): Promise<void>;
}

export function createUploadWriter(deps: UploadWriterDeps): UploadWriter {
  const { record, handle, hash, store, logger } = deps;
  const log = logger.child({ uploadId: record.uploadId, path: record.targetPath });
  let committed = deps.committedOffset;
  let status: "open" | "closed" | "finished" | "aborted" | "failed" = "open";
  let handleOpen = true;
  let tail: Promise<unknown> = Promise.resolve();
  // The disk takes the bytes as they arrive, so the sync before placing the file is short.
  const writeBehind = createWriteBehindSync(handle);

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  }
  function ensureOpen(): void {
    if (status !== "open") {
      throw new GuruError("failed_precondition", `upload ${record.uploadId} is ${status}; open it again to resume`, {
        reason: "UPLOAD_NOT_ACTIVE",
        metadata: { uploadId: record.uploadId, status },
      });
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
      throw new GuruError("failed_precondition", `expected offset ${committed}`, {
        reason: "UPLOAD_OFFSET_MISMATCH",
        metadata: { expectedOffset: committed, offset },
      });
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
    writeBehind.wrote(data.length);
    return committed;
  }

  /** The hash the file must have: declared at open or given at finish; when both are given they must agree. */
  function expectedSha256(atFinish: string): string {
    const given = atFinish.toLowerCase();
    if (given !== "" && !isSha256Hex(given)) throw new GuruError("invalid", "sha256 must be 64 hex digits", { details: { sha256: atFinish } });
    if (given !== "" && record.sha256 !== "" && given !== record.sha256)
      throw new GuruError("invalid", `the SHA-256 given at finish differs from the one the upload started with (${record.sha256}); nothing was replaced`, {
        metadata: { field: "sha256" },
      });
    const expected = record.sha256 || given;
    if (expected === "")
      throw new GuruError("invalid", "the upload started without a SHA-256, so finishing it needs one; nothing was replaced", {
        metadata: { field: "sha256" },
      });
    return expected;
  }

  async function finish(atFinish = ""): Promise<{ size: number; sha256: string; backupPath: string; path: string }> {
    ensureOpen();
    const details = { uploadId: record.uploadId, path: record.targetPath };
    const expected = expectedSha256(atFinish);
    if (committed !== record.size) {
      // Short, not wrong: the bytes so far are kept so the client can resume from committedOffset.
      throw new GuruError(
        "failed_precondition",
        `upload incomplete: ${committed} of ${record.size} bytes committed; send the rest from offset ${committed}; nothing was replaced`,
        {
          reason: "UPLOAD_INCOMPLETE",
          metadata: { size: record.size, expectedOffset: committed },
          details: { ...details, size: record.size, committedOffset: committed },
        },
      );
    }
    const sha256 = hash.copy().digest("hex");
    if (sha256 !== expected) {
      // Wrong bytes somewhere, and we cannot tell where: discard them so the upload can never be finished with them.
      await end("failed");
      await rm(record.tempPath, { force: true });
      await store.remove(record.uploadId);
      log.warn({ expected, actual: sha256 }, "upload checksum mismatch; partial discarded");
      throw new GuruError("data_loss", `SHA-256 mismatch: expected ${expected}, got ${sha256}; nothing was replaced`, {
        reason: "UPLOAD_CHECKSUM_MISMATCH",
        metadata: { expectedSha256: expected, actualSha256: sha256 },
        details: { ...details, expectedSha256: expected, actualSha256: sha256 },
      });
    }
    try {
      // The target may have changed since open (a directory swapped for a symlink, the file created meanwhile).
      const target = await deps.guard.resolve(deps.requestedPath, { mustExist: false });
      if (target !== record.targetPath) {
        throw new GuruError("conflict", `"${deps.requestedPath}" now resolves to "${target}", not "${record.targetPath}"; nothing was replaced`, {
          details,
          reason: "FILE_CHANGED",
          metadata: { path: deps.requestedPath },
        });
      }
      const old = await lstatOrUndefined(record.targetPath);
      if (old?.isDirectory()) throw new GuruError("invalid", `"${deps.requestedPath}" is now a directory; nothing was replaced`, { details });
      if (old && !deps.overwrite)
        throw new GuruError("conflict", `"${deps.requestedPath}" exists and overwrite is false; nothing was replaced`, {
          details,
          reason: "FILE_EXISTS",
          metadata: { path: deps.requestedPath },
        });
      await handle.chmod(old?.isFile() ? old.mode & 0o777 : deps.newFileMode);
      // Data on disk before the name points at it: after a power cut the target is old or new, never empty.
      await writeBehind.settle();
      await handle.sync();
      await closeHandle();

      const backupPath = deps.keepBackup && old?.isFile() ? await keepBackupOf(record.targetPath) : "";
      await deps.hooks?.beforePlace?.(record.targetPath);
      await placeFile(sha256);
      // The backup is the old file (a hard link to it): it must not stay a setuid program under another name.
      if (backupPath && old && (old.mode & specialBits) !== 0) await stripSpecialBits(backupPath, log);
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

  /**
   * With overwrite, rename() replaces the target atomically (and replaces a
   * symlink swapped in there rather than following it). Without overwrite the
   * target must never be replaced, even by a file created after the check:
   * link() creates the name only if it is free (EEXIST otherwise), atomically,
   * and the name then points at the verified bytes themselves. Where the
   * filesystem has no hard links, copyFile(COPYFILE_EXCL) is the no-replace
   * fallback: exclusive too, but the copy is visible while it is written, so
   * its SHA-256 is checked again before the temp file goes.
   */
  /** `sha256`: the verified hash, which a copy (where no hard link can be made) must still have. */
  async function placeFile(sha256: string): Promise<void> {
    if (deps.overwrite) {
      await rename(record.tempPath, record.targetPath);
      return;
    }
    const created = () =>
      new GuruError("conflict", `"${deps.requestedPath}" was created meanwhile and overwrite is false; nothing was replaced`, {
        reason: "FILE_EXISTS",
        metadata: { path: deps.requestedPath },
        details: { path: record.targetPath },
      });
    try {
      await (deps.hooks?.link ?? link)(record.tempPath, record.targetPath);
    } catch (err) {
      const code = errnoCode(err);
      if (code === "EEXIST") throw created();
      if (!noLinkCodes.has(code ?? "")) throw err;
      await copyExclusive(created, sha256);
    }
    await unlink(record.tempPath);
  }

  async function copyExclusive(created: () => GuruError, sha256: string): Promise<void> {
    try {
      await copyFile(record.tempPath, record.targetPath, constants.COPYFILE_EXCL);
    } catch (err) {
      if (errnoCode(err) === "EEXIST") throw created();
      throw err;
    }
    const copied = await sha256Of(record.targetPath);
    if (copied !== sha256) {
      // Ours (COPYFILE_EXCL created it), and wrong: remove it; the verified temp file stays for another try.
      await rm(record.targetPath, { force: true });
      throw new GuruError("data_loss", `the copy placed at "${deps.requestedPath}" does not match SHA-256 ${sha256}; removed it`, {
        details: { path: record.targetPath },
      });
    }
    await syncFile(record.targetPath);
  }

  return {
    get committedOffset() {
      return committed;
    },
    write: (offset, data) => serial(() => write(offset, data)),
    finish: (sha256) => serial(() => finish(sha256)),
    abort: () =>
      serial(async () => {
        if (status === "finished") return;
        if (deps.superseded()) {
          throw new GuruError("failed_precondition", `upload ${record.uploadId} was reopened elsewhere; abort it there`, {
            reason: "UPLOAD_NOT_ACTIVE",
            metadata: { uploadId: record.uploadId },
          });
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
