// `npm run bench`: every bench/*.bench.ts in turn. Each exports
// `run(): Promise<void>` and prints its figures beside a baseline measured in
// the same run (raw ws, a local spawn, a direct call), as ratios.
// `npm run bench -- exec` runs only the benchmarks whose file name contains "exec".
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts") && (filter === undefined || f.includes(filter)))
  .sort();

for (const file of files) {
  process.stdout.write(`\n== ${file.replace(/\.bench\.ts$/, "")}\n`);
  const started = performance.now();
  const mod = (await import(`./${file}`)) as { run: () => Promise<void> };
  await mod.run();
  process.stdout.write(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}
