// Whether the CLI bundle (scripts/build-cli.ts) may run instead of the sources.
// Plain JavaScript: bin/guru.js asks before any TypeScript loads.
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The URL of the bundle's entry module in `dir`, or undefined when there is no
 * complete bundle there or it is stale: its manifest (written last by the
 * build) lists every project file that went into it, and package-lock.json,
 * with their mtime and size, and one of them differs or is gone. A developer
 * who edits a source file runs the sources until the next `npm run build`.
 * Stats every listed file (about 45, about a millisecond); never throws.
 */
export function cliBundleEntry(dir) {
  try {
    const manifest = JSON.parse(readFileSync(resolve(dir, "manifest.json"), "utf8"));
    const root = resolve(dir, manifest.root);
    for (const [file, mtimeMs, size] of manifest.files) {
      const stat = statSync(resolve(root, file), { throwIfNoEntry: false });
      if (stat === undefined || stat.mtimeMs !== mtimeMs || stat.size !== size) return undefined;
    }
    return pathToFileURL(resolve(dir, manifest.entry)).href;
  } catch {
    return undefined;
  }
}
