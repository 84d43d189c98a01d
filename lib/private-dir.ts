// Directories that hold secrets (the server's data dir: signing keys in the
// embedded database, the admin token; the agent's state dir: upload partials
// and the operation log) must be the owner's alone. Processes that keep such
// state run with umask 077, so every file and directory they create is
// 0600/0700 whatever the library creating it asks for (PGlite asks for 0666),
// and they refuse to start on a directory that others can read or enter:
// fixing it is one chmod, which the message names.
import { chmod, lstat, mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { GuruError } from "./errors.ts";

/** The umask of processes that keep private state: owner-only files (0600) and directories (0700). */
const privateUmask = 0o077;

/** Sets the process umask to 077 and returns the one it replaces (new files placed for users may still want it). */
export function usePrivateUmask(): number {
  return process.umask(privateUmask);
}

const format = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

/**
 * Creates `dir` (0700) when missing; refuses one whose group or other bits are
 * set, naming the chmod that fixes it. `what` names it in the message ("data dir").
 * Windows has no mode bits to check (ACLs decide), so there it only creates.
 */
export async function ensurePrivateDir(dir: string, what: string, platform: NodeJS.Platform = process.platform): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (platform === "win32") return;
  const stats = await stat(dir);
  if (!stats.isDirectory()) throw new GuruError("invalid", `${what} ${dir} is not a directory`, { details: { path: dir } });
  if ((stats.mode & 0o077) !== 0) {
    throw new GuruError(
      "failed_precondition",
      `${what} ${dir} is open to other users (mode ${format(stats.mode)}) and holds private keys and data; run: chmod 700 ${dir}`,
      { details: { path: dir, mode: stats.mode & 0o7777 } },
    );
  }
}

/**
 * Takes group and other bits off everything under `dir` (symlinks are left
 * alone). For files a library creates with modes of its own: PGlite's initial
 * database comes out 0666/0755 whatever the umask.
 */
export async function makeTreePrivate(dir: string): Promise<number> {
  let changed = 0;
  const visit = async (p: string): Promise<void> => {
    const stats = await lstat(p);
    if (stats.isSymbolicLink()) return;
    if ((stats.mode & 0o077) !== 0) {
      await chmod(p, stats.mode & 0o7700);
      changed++;
    }
    if (stats.isDirectory()) for (const name of await readdir(p)) await visit(join(p, name));
  };
  await visit(dir);
  return changed;
}
