// Measures upload write+hash throughput against fs.copyFile of the same bytes,
// in one run (compare the ratio, not absolute numbers: see PERF-NOTES).
// Run: npx --no -- node agent/files/measure-upload.ts [MiB] [chunkKiB]
// Everything is written under a temp dir that is removed at the end.
import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, open, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../lib/logging.ts";
import { createPathGuard } from "../policy/path-guard.ts";
import { createUploadManager } from "./uploads.ts";

const MiB = 1024 * 1024;
const totalMiB = Number(process.argv[2] ?? 1024);
const chunkBytes = Number(process.argv[3] ?? 256) * 1024;
const size = totalMiB * MiB;
const out = (line: string) => process.stdout.write(`${line}\n`);
const rate = (bytes: number, ms: number) => `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;

const root = await realpath(await mkdtemp(join(tmpdir(), "guru-measure-")));
try {
  const allowed = join(root, "allowed");
  await mkdir(allowed);
  // 16 distinct random chunks in rotation: the disk and the hash see no shortcut.
  const pool = Array.from({ length: 16 }, () => randomBytes(chunkBytes));
  const chunkAt = (i: number) => pool[(i * 7) % pool.length];
  const chunks = size / chunkBytes;
  let t = performance.now();
  const expected = createHash("sha256");
  for (let i = 0; i < chunks; i++) expected.update(chunkAt(i));
  const sha256 = expected.digest("hex");
  const hashMs = performance.now() - t;

  const uploads = createUploadManager({ stateDir: join(root, "state"), logger: silentLogger(), keepBackupDefault: true, abandonedAfterMs: 3_600_000 });
  const guard = createPathGuard([allowed]);
  const rssBefore = process.memoryUsage.rss();
  t = performance.now();
  const writer = await uploads.open(guard, { uploadId: "measure", path: "upload.bin", size, sha256, overwrite: false });
  for (let i = 0; i < chunks; i++) await writer.write(i * chunkBytes, chunkAt(i));
  const writeMs = performance.now() - t;
  t = performance.now();
  await writer.finish();
  const finishMs = performance.now() - t;
  const rssGrowth = process.memoryUsage.rss() - rssBefore;

  t = performance.now();
  await copyFile(join(allowed, "upload.bin"), join(root, "copy.bin"));
  const copyMs = performance.now() - t;
  t = performance.now();
  const copied = await open(join(root, "copy.bin"), "r+");
  await copied.sync();
  await copied.close();
  const copySyncMs = performance.now() - t;

  // Plain sequential writes of the same chunks, no hash, no checks: the floor of this disk.
  t = performance.now();
  const raw = await open(join(root, "raw.bin"), "w");
  for (let i = 0; i < chunks; i++) await raw.write(chunkAt(i), 0, chunkBytes, i * chunkBytes);
  const rawMs = performance.now() - t;
  await raw.close();

  out(`${totalMiB} MiB in ${chunkBytes / 1024} KiB chunks`);
  out(`sha256 alone (memory):          ${rate(size, hashMs)}`);
  out(`upload write+hash:              ${rate(size, writeMs)} (${writeMs.toFixed(0)} ms)`);
  out(`upload finish (fsync+rename):   ${finishMs.toFixed(0)} ms; with it ${rate(size, writeMs + finishMs)}`);
  out(`raw handle.write, no hash:      ${rate(size, rawMs)}`);
  out(`fs.copyFile:                    ${rate(size, copyMs)} (${copyMs.toFixed(0)} ms); + fsync ${rate(size, copyMs + copySyncMs)}`);
  out(`ratio upload write+hash / copyFile: ${(copyMs / writeMs).toFixed(2)}`);
  out(`RSS growth during upload: ${(rssGrowth / MiB).toFixed(1)} MiB`);
} finally {
  await rm(root, { recursive: true, force: true });
}
