// The file operations around placing an upload: backups of the file being
// replaced, fsync of files and directories, re-hashing a placed copy, and
// taking setuid/setgid/sticky off a file. Kept apart from the writer's state
// machine; every open here refuses to follow a symlink at the last component.
import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { copyFile, link, lstat, open, type FileHandle } from "node:fs/promises";
import type { Logger } from "../../lib/logging.ts";
import { errnoCode } from "./file-entry.ts";

/** setuid, setgid and sticky: never carried onto uploaded content. */
export const specialBits = 0o7000;

// Hard links are unsupported on some filesystems (FAT, some network shares); then we copy or rename.
export const noLinkCodes = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"]);

/** Sortable and valid in Windows names: 20250102T030405678Z. */
function backupStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

export async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** Keeps the old file as `<name>.guru-backup-<stamp>`: a hard link (no copy, and the target never goes missing), else a copy. */
export async function keepBackupOf(targetPath: string): Promise<string> {
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

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  try {
    for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

export async function syncFile(file: string): Promise<void> {
  const handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Through a handle opened without following links, so a symlink swapped in at the backup's name is never chmod'ed. */
export async function stripSpecialBits(file: string, log: Logger): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
    const stats = await handle.stat();
    if (stats.isFile() && (stats.mode & specialBits) !== 0) await handle.chmod(stats.mode & 0o777);
  } catch (err) {
    log.warn({ err, file }, "could not clear setuid/setgid bits of a backup");
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Makes the rename itself durable; not possible on Windows (directories cannot be opened), where NTFS journals it. */
export async function syncDirectory(dir: string): Promise<void> {
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
