// FileEntry from lstat/fstat results, and filesystem errors mapped to our kinds.
import type { Stats } from "node:fs";
import { GuruError } from "../../lib/errors.ts";
import type { FileEntry, FileEntryType } from "./types.ts";

export type { FileEntry, FileEntryType } from "./types.ts";

function entryTypeOf(stats: Stats): FileEntryType {
  if (stats.isSymbolicLink()) return "symlink";
  if (stats.isFile()) return "file";
  if (stats.isDirectory()) return "dir";
  return "other";
}

export function entryFromStats(name: string, stats: Stats): FileEntry {
  return {
    name,
    type: entryTypeOf(stats),
    size: stats.size,
    mode: stats.mode & 0o7777,
    modifiedMs: Math.trunc(stats.mtimeMs),
  };
}

/** MIME types for entries that are not regular files (the freedesktop shared-mime-info names). */
export function nonFileMimeType(stats: Stats): string {
  if (stats.isDirectory()) return "inode/directory";
  if (stats.isSymbolicLink()) return "inode/symlink";
  if (stats.isFIFO()) return "inode/fifo";
  if (stats.isSocket()) return "inode/socket";
  if (stats.isBlockDevice()) return "inode/blockdevice";
  if (stats.isCharacterDevice()) return "inode/chardevice";
  return "application/octet-stream";
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

/** Maps a filesystem error on `path` to our vocabulary; unknown ones become internal with the cause kept. */
export function fsError(err: unknown, path: string, action: string): GuruError {
  if (err instanceof GuruError) return err;
  const code = errnoCode(err);
  const details = { path, code };
  switch (code) {
    case "ENOENT":
      return new GuruError("not_found", `cannot ${action} "${path}": it does not exist`, { cause: err, details, reason: "PATH_NOT_FOUND", metadata: { path } });
    case "EACCES":
    case "EPERM":
      return new GuruError("denied", `cannot ${action} "${path}": permission denied`, {
        cause: err,
        details,
        reason: "FILE_ACCESS_DENIED",
        metadata: { path },
      });
    case "ELOOP":
      return new GuruError("denied", `cannot ${action} "${path}": it became a symbolic link after the path check`, {
        cause: err,
        details,
        reason: "PATH_NOT_ALLOWED",
        metadata: { path },
      });
    case "EISDIR":
      return new GuruError("invalid", `cannot ${action} "${path}": it is a directory`, { cause: err, details });
    case "ENOTDIR":
      return new GuruError("invalid", `cannot ${action} "${path}": a parent is not a directory`, { cause: err, details });
    case "EBUSY":
      return new GuruError("unavailable", `cannot ${action} "${path}": it is in use by another process`, { cause: err, details });
    case "ENOSPC":
    case "EDQUOT":
      return new GuruError("unavailable", `cannot ${action} "${path}": no space left on the device`, { cause: err, details });
    case "EROFS":
      return new GuruError("denied", `cannot ${action} "${path}": read-only filesystem`, {
        cause: err,
        details,
        reason: "FILE_ACCESS_DENIED",
        metadata: { path },
      });
    case "ENAMETOOLONG":
      return new GuruError("invalid", `cannot ${action} "${path}": name too long`, { cause: err, details });
    default:
      return new GuruError("internal", `cannot ${action} "${path}"`, { cause: err, details });
  }
}
