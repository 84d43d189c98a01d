// `npm run bench`: every bench/*.bench.ts in turn. Each exports
// `run(): Promise<void>` and prints its figures beside a baseline measured in
// the same run (raw ws, a local spawn, a direct call), as ratios.
// `npm run bench -- exec` runs only the benchmarks whose file name contains "exec".
// A benchmark that fails (throws) does not stop the others; the exit code is
// non-zero if any failed. A missed target is not a failure: it is in the report.
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts") && (filter === undefined || f.includes(filter)))
  .sort();

const failed: string[] = [];
const begun = performance.now();
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, "");
  process.stdout.write(`\n== ${name}\n`);
  const started = performance.now();
  try {
    const mod = (await import(`./${file}`)) as { run: () => Promise<void> };
    await mod.run();
  } catch (err) {
    failed.push(name);
    process.stdout.write(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.stdout.write(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}
process.stdout.write(
  `\n${files.length} benchmarks in ${((performance.now() - begun) / 60_000).toFixed(1)} min${failed.length ? `; FAILED: ${failed.join(", ")}` : ""}\n`,
);
process.exitCode = failed.length > 0 ? 1 : 0;
