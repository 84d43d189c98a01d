// stat of one path inside the allowlist. The guard resolves symlinks, so this
// describes the link's TARGET (its real path is returned); listings are where
// links show up as links. Regular files are opened once to sniff their MIME type.
import { lstat } from "node:fs/promises";
import path from "node:path";
import type { PathGuard } from "../policy/path-guard.ts";
import { entryFromStats, fsError, nonFileMimeType, type FileEntry } from "./file-entry.ts";
import { mimeTypeOfHandle } from "./mime.ts";
import { openRegularFile, platformHandleChecks, type HandleChecks } from "./open-file.ts";

export interface StatResult {
  /** The real path that was described. */
  path: string;
  entry: FileEntry;
  mimeType: string;
}

export async function statPath(guard: PathGuard, inputPath: string, checks: HandleChecks = platformHandleChecks): Promise<StatResult> {
  const realPath = await guard.resolve(inputPath);
  const stats = await lstat(realPath).catch((err: unknown) => {
    throw fsError(err, inputPath, "stat");
  });
  if (!stats.isFile()) {
    // A symlink here means one was swapped in after the guard's check: describe the link, never follow it.
    return { path: realPath, entry: entryFromStats(path.basename(realPath), stats), mimeType: nonFileMimeType(stats) };
  }
  const opened = await openRegularFile(guard, realPath, checks);
  try {
    const mimeType = await mimeTypeOfHandle(opened.realPath, opened.handle);
    return { path: opened.realPath, entry: entryFromStats(path.basename(opened.realPath), opened.stats), mimeType };
  } finally {
    await opened.handle.close();
  }
}
