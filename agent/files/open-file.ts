// Opens files and directories so that what was checked is what is used. The
// guard answers with a real path; between that answer and open() someone
// could swap a component for a symlink. So:
// - O_NOFOLLOW: the last component must not be a symlink (ELOOP → denied);
// - O_NONBLOCK: opening a FIFO would otherwise block a threadpool thread forever;
// - after open, everything is done on the handle, and the handle is checked:
//   where the OS names an open descriptor by path (Linux: /proc/self/fd/N),
//   that name is checked against the guard again, which catches a directory
//   higher up swapped for a symlink. Elsewhere the path is resolved again (a
//   swap still in place leads outside: denied) and the handle's identity
//   (device and inode from fstat) must match a fresh stat of that path (a
//   swap undone meanwhile leaves the handle on another file: conflict).
// Which of the two applies is a capability (HandleChecks), so both are tested on Linux.
import { constants, type Stats } from "node:fs";
import { lstat, open, readlink, stat, type FileHandle } from "node:fs/promises";
import { GuruError } from "../../lib/errors.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { fsError } from "./file-entry.ts";

const readFlags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const dirFlags = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | (constants.O_NOFOLLOW ?? 0);

/** How open handles are checked on this platform; tests inject the other way and a swap between resolve and open. */
export interface HandleChecks {
  /** A path naming the open descriptor itself (Linux: /proc/self/fd/N), or undefined where the platform has none. */
  fdPath(fd: number): string | undefined;
  /** Whether directories can be opened as handles (not on Windows, where libuv refuses them). */
  readonly dirHandles: boolean;
  /** Tests only: runs between the guard's answer and open(). */
  beforeOpen?(realPath: string): Promise<void>;
  /** Tests only: runs between open() and the check of the handle. */
  afterOpen?(realPath: string): Promise<void>;
}

export function createHandleChecks(options: {
  procFd: boolean;
  dirHandles?: boolean;
  beforeOpen?: HandleChecks["beforeOpen"];
  afterOpen?: HandleChecks["afterOpen"];
}): HandleChecks {
  return {
    fdPath: (fd) => (options.procFd ? `/proc/self/fd/${fd}` : undefined),
    dirHandles: options.dirHandles ?? process.platform !== "win32",
    beforeOpen: options.beforeOpen,
    afterOpen: options.afterOpen,
  };
}

export const platformHandleChecks: HandleChecks = createHandleChecks({ procFd: process.platform === "linux" });

export interface OpenedFile {
  realPath: string;
  handle: FileHandle;
  stats: Stats;
}

/** Checks that an open handle still refers to what the guard checked, inside the allowlist. */
export async function verifyHandleInside(guard: PathGuard, handle: FileHandle, realPath: string, checks: HandleChecks = platformHandleChecks): Promise<void> {
  const fdPath = checks.fdPath(handle.fd);
  if (fdPath !== undefined) {
    let actual: string | undefined;
    try {
      actual = await readlink(fdPath);
    } catch {
      // /proc not mounted (some containers): the identity check below still applies.
    }
    if (actual !== undefined) {
      if (actual.endsWith(" (deleted)")) {
        throw new GuruError("not_found", `"${realPath}" was deleted while being opened`, { reason: "PATH_NOT_FOUND", metadata: { path: realPath } });
      }
      // Throws denied when the handle's real location is outside.
      await guard.resolve(actual);
      return;
    }
  }
  const byHandle = await handle.stat();
  await verifyIdentity(guard, realPath, byHandle);
}

/** The path still resolves to itself, inside, and names the object `expected` describes. */
async function verifyIdentity(guard: PathGuard, realPath: string, expected: Stats): Promise<void> {
  const changed = () =>
    new GuruError("conflict", `"${realPath}" changed while being opened; try again`, { reason: "FILE_CHANGED", metadata: { path: realPath } });
  // Denied when a component swapped for a symlink now leads outside; gone or elsewhere: changed.
  const again = await guard.resolve(realPath).catch((err: unknown) => {
    throw err instanceof GuruError && err.kind === "not_found" ? changed() : err;
  });
  if (again !== realPath) throw changed();
  const byPath = await stat(realPath).catch(() => undefined);
  if (!byPath || byPath.dev !== expected.dev || byPath.ino !== expected.ino) throw changed();
}

/** Opens a regular file inside the allowlist for reading. The caller closes the handle. */
export async function openRegularFile(guard: PathGuard, path: string, checks: HandleChecks = platformHandleChecks): Promise<OpenedFile> {
  const realPath = await guard.resolve(path);
  await checks.beforeOpen?.(realPath);
  let handle: FileHandle;
  try {
    handle = await open(realPath, readFlags);
  } catch (err) {
    throw fsError(err, path, "open");
  }
  try {
    await checks.afterOpen?.(realPath);
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new GuruError("invalid", `"${path}" is not a regular file`, { details: { path: realPath } });
    }
    await verifyHandleInside(guard, handle, realPath, checks);
    return { realPath, handle, stats };
  } catch (err) {
    await handle.close().catch(() => {});
    throw fsError(err, path, "open");
  }
}

export interface OpenedDirectory {
  realPath: string;
  stats: Stats;
  /** Where to read the directory: the handle's own path where there is one, else the checked real path. */
  readPath: string;
  /** After reading through realPath (no handle path): the directory must still be the one checked. */
  verifyAfterRead(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a directory inside the allowlist for listing: open, check the handle,
 * then read. Where the handle has a path (/proc/self/fd/N) the listing reads
 * through it, so a later swap cannot redirect it; elsewhere it reads the
 * checked path and the caller checks the identity again afterwards.
 */
export async function openDirectory(guard: PathGuard, path: string, checks: HandleChecks = platformHandleChecks): Promise<OpenedDirectory> {
  const realPath = await guard.resolve(path);
  await checks.beforeOpen?.(realPath);
  const notDir = () => new GuruError("invalid", `"${path}" is not a directory`, { details: { path: realPath } });
  if (!checks.dirHandles) {
    // No directory handles (Windows): the identity before and after the read must agree.
    const stats = await stat(realPath).catch((err: unknown) => {
      throw fsError(err, path, "list");
    });
    if (!stats.isDirectory()) throw notDir();
    await checks.afterOpen?.(realPath);
    await verifyIdentity(guard, realPath, stats);
    return { realPath, stats, readPath: realPath, verifyAfterRead: () => verifyIdentity(guard, realPath, stats), close: async () => {} };
  }
  let handle: FileHandle;
  try {
    handle = await open(realPath, dirFlags);
  } catch (err) {
    // O_DIRECTORY|O_NOFOLLOW on a symlink is ENOTDIR: say which it is.
    if ((err as { code?: string }).code === "ENOTDIR") {
      const now = await lstat(realPath).catch(() => undefined);
      if (now?.isSymbolicLink()) throw fsError(Object.assign(new Error("ELOOP"), { code: "ELOOP" }), path, "list");
      throw notDir();
    }
    throw fsError(err, path, "list");
  }
  try {
    await checks.afterOpen?.(realPath);
    const stats = await handle.stat();
    if (!stats.isDirectory()) throw notDir();
    await verifyHandleInside(guard, handle, realPath, checks);
    const fdPath = checks.fdPath(handle.fd);
    const readable =
      fdPath !== undefined &&
      (await stat(fdPath).then(
        (s) => s.ino === stats.ino && s.dev === stats.dev,
        () => false,
      ));
    return {
      realPath,
      stats,
      readPath: readable ? (fdPath as string) : realPath,
      verifyAfterRead: readable ? async () => {} : () => verifyIdentity(guard, realPath, stats),
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close().catch(() => {});
    throw fsError(err, path, "list");
  }
}
