// Directory listings in pages. Every call reads the directory's names (cheap:
// one getdents pass, no per-entry syscalls), sorts them by UTF-16 code units
// (stable across calls and platforms, unlike localeCompare), and lstats only
// the page's entries. The page token names the last entry returned, so the
// next page starts strictly after it: entries added or removed between pages
// never make an entry that stayed appear twice or go missing. The directory is
// opened and its handle checked before it is read (see openDirectory).
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { GuruError } from "../../lib/errors.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { entryFromStats, errnoCode, fsError, type FileEntry } from "./file-entry.ts";
import { openDirectory, platformHandleChecks, type HandleChecks } from "./open-file.ts";

const defaultListPageSize = 1000;
const maxListPageSize = 5000;
// Tokens are opaque to clients; the prefix lets a later format coexist.
const tokenPrefix = "n1:";

export interface ListDirectoryRequest {
  path: string;
  /** Entries per page: 0 or absent → 1000; above 5000 → 5000. */
  pageSize?: number;
  /** From the previous page's nextPageToken; absent or "" → the first page. */
  pageToken?: string;
}

export interface ListDirectoryResult {
  /** The directory's real path. */
  path: string;
  entries: FileEntry[];
  /** "" on the last page. */
  nextPageToken: string;
  /** Entries in the whole directory at the time of this call. */
  totalEntries: number;
}

function encodePageToken(lastName: string): string {
  return Buffer.from(tokenPrefix + lastName, "utf8").toString("base64url");
}

function decodePageToken(token: string): string {
  const decoded = Buffer.from(token, "base64url").toString("utf8");
  if (!decoded.startsWith(tokenPrefix) || decoded.length === tokenPrefix.length || encodePageToken(decoded.slice(tokenPrefix.length)) !== token) {
    throw new GuruError("invalid", "invalid page token", { details: { pageToken: token } });
  }
  return decoded.slice(tokenPrefix.length);
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Index of the first name strictly greater than `after` in a sorted array. */
function firstAfter(names: string[], after: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid] <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export async function listDirectory(
  guard: PathGuard,
  request: ListDirectoryRequest,
  checks: HandleChecks = platformHandleChecks,
): Promise<ListDirectoryResult> {
  const requested = request.pageSize ?? 0;
  if (!Number.isSafeInteger(requested) || requested < 0) {
    throw new GuruError("invalid", "pageSize must be a non-negative integer", { details: { pageSize: requested } });
  }
  const pageSize = requested === 0 ? defaultListPageSize : Math.min(requested, maxListPageSize);
  const after = request.pageToken ? decodePageToken(request.pageToken) : undefined;

  const dir = await openDirectory(guard, request.path, checks);
  try {
    const names = await readdir(dir.readPath).catch((err: unknown) => {
      throw fsError(err, request.path, "list");
    });
    names.sort(byCodeUnits);

    const start = after === undefined ? 0 : firstAfter(names, after);
    const pageNames = names.slice(start, start + pageSize);
    const stats = await Promise.all(
      pageNames.map((name) =>
        lstat(path.join(dir.readPath, name)).catch((err: unknown) => {
          // Removed since readdir: leave it out rather than fail the whole page.
          if (errnoCode(err) === "ENOENT") return undefined;
          throw fsError(err, path.join(request.path, name), "stat");
        }),
      ),
    );
    // Read through the path (no handle path on this platform): it must still be the directory checked.
    await dir.verifyAfterRead();
    const entries: FileEntry[] = [];
    stats.forEach((s, i) => {
      if (s) entries.push(entryFromStats(pageNames[i], s));
    });
    const more = start + pageSize < names.length;
    return {
      path: dir.realPath,
      entries,
      nextPageToken: more && pageNames.length > 0 ? encodePageToken(pageNames[pageNames.length - 1]) : "",
      totalEntries: names.length,
    };
  } finally {
    await dir.close().catch(() => {});
  }
}
