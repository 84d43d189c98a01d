// Opens a file for reading so that what was checked is what is read. The
// guard answers with a real path; between that answer and open() someone
// could swap a component for a symlink. So:
// - O_NOFOLLOW: the last component must not be a symlink (ELOOP → denied);
// - O_NONBLOCK: opening a FIFO would otherwise block a threadpool thread forever;
// - after open, everything is done on the handle, and on Linux the handle's
//   own path (/proc/self/fd/N) is checked against the guard again, which
//   catches a directory higher up swapped for a symlink. Elsewhere the handle's
//   device and inode must match the checked path's.
import { constants, type Stats } from "node:fs";
import { open, readlink, stat, type FileHandle } from "node:fs/promises";
import { GuruError } from "../../lib/errors.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { fsError } from "./file-entry.ts";

const readFlags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

export interface OpenedFile {
  realPath: string;
  handle: FileHandle;
  stats: Stats;
}

/** Checks that an open handle still refers to something inside the allowlist. */
export async function verifyHandleInside(guard: PathGuard, handle: FileHandle, realPath: string): Promise<void> {
  if (process.platform === "linux") {
    let actual: string;
    try {
      actual = await readlink(`/proc/self/fd/${handle.fd}`);
    } catch {
      return verifyByInode(handle, realPath); // /proc not mounted (some containers)
    }
    if (actual.endsWith(" (deleted)")) {
      throw new GuruError("not_found", `"${realPath}" was deleted while being opened`, { reason: "PATH_NOT_FOUND", metadata: { path: realPath } });
    }
    // Throws denied when the handle's real location is outside.
    await guard.resolve(actual);
    return;
  }
  return verifyByInode(handle, realPath);
}

async function verifyByInode(handle: FileHandle, realPath: string): Promise<void> {
  const [byHandle, byPath] = await Promise.all([handle.stat(), stat(realPath).catch(() => undefined)]);
  if (!byPath || byHandle.dev !== byPath.dev || byHandle.ino !== byPath.ino) {
    throw new GuruError("conflict", `"${realPath}" changed while being opened; try again`, { reason: "FILE_CHANGED", metadata: { path: realPath } });
  }
}

/** Opens a regular file inside the allowlist for reading. The caller closes the handle. */
export async function openRegularFile(guard: PathGuard, path: string): Promise<OpenedFile> {
  const realPath = await guard.resolve(path);
  let handle: FileHandle;
  try {
    handle = await open(realPath, readFlags);
  } catch (err) {
    throw fsError(err, path, "open");
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new GuruError("invalid", `"${path}" is not a regular file`, { details: { path: realPath } });
    }
    await verifyHandleInside(guard, handle, realPath);
    return { realPath, handle, stats };
  } catch (err) {
    await handle.close().catch(() => {});
    throw fsError(err, path, "open");
  }
}
