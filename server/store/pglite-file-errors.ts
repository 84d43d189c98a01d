// PGlite's file layer (Emscripten's) throws plain `{ name: "ErrnoError",
// errno }` objects, not Errors, with WASI's errno numbers: printed as they
// are, a full disk reads "ErrnoError { errno: 51 }". This names them.
import { GuruError } from "../../lib/errors.ts";

const wasiErrnos: Record<number, string> = {
  2: "permission denied (EACCES)",
  19: "disk quota exceeded (EDQUOT)",
  29: "input/output error (EIO)",
  44: "no such file or directory (ENOENT)",
  51: "no space left on device (ENOSPC)",
  63: "operation not permitted (EPERM)",
  69: "read-only file system (EROFS)",
};

/** The embedded database's file error as a GuruError that says what failed where; undefined for anything else. */
export function embeddedFileError(err: unknown, dir: string): GuruError | undefined {
  if (typeof err !== "object" || err === null || (err as { name?: unknown }).name !== "ErrnoError") return undefined;
  const errno = (err as { errno?: unknown }).errno;
  const what = typeof errno === "number" ? (wasiErrnos[errno] ?? `file error ${errno}`) : "a file error";
  return new GuruError("unavailable", `the embedded database in ${dir} could not use its files: ${what}`, {
    cause: err,
    metadata: { errno: String(errno) },
  });
}
