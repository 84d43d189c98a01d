#!/usr/bin/env node
// The `guru` binary. Node 24 runs the TypeScript sources by type stripping,
// or the technician commands from the CLI bundle (scripts/build-cli.ts).
import { readFileSync } from "node:fs";
import module from "node:module";
import { fileURLToPath } from "node:url";

// `guru --version` answers before any TypeScript is loaded: stripping types
// is what a cold start spends most of its time on.
if (process.argv[2] === "--version" && process.argv.length === 3) {
  process.stdout.write(`${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`);
} else if (!process.features?.typescript) {
  // The sources are TypeScript, run by Node's own type stripping. Through npm
  // (`npx guru`, `npm start`) they run on the project's Node 24, the `node`
  // devDependency, whatever Node launched npm; run directly, they need it too.
  process.stderr.write(
    `guru: Node ${process.versions.node} cannot run guru's TypeScript sources; run it through npm (npx guru …), which uses the project's Node 24, or with Node 24 itself (node_modules/.bin/node bin/guru.js …)\n`,
  );
  process.exitCode = 1;
} else {
  // Compiled code (and stripped TypeScript) is cached on disk between runs
  // (NODE_COMPILE_CACHE, else a directory under the system's temp dir), so a
  // cold `guru run` does not parse and strip every module again.
  module.enableCompileCache?.();
  // Bulk transfers allocate a buffer per socket read and per WebSocket message;
  // they die young and scavenges free them. By default V8 also starts a full
  // mark-compact each time such external memory grows by 64 MiB, dozens per
  // GiB moved, and each one stalls the process. Counted in the heap's global
  // limit instead, external memory triggers a full GC only as the heap grows
  // (measured: the server's full GCs during a 256 MiB upload and download
  // went from 52 to 4, its CPU per GiB downloaded halved, peak RSS stayed
  // bounded). Set before any module loads, so no heap limit is computed yet.
  // `node --no-external-memory-accounted-in-global-limit bin/guru.js …` keeps V8's default.
  // Only the commands that move bulk data: node:v8 is milliseconds of a cold `guru run`.
  const movesBulkData = ["cp", "server", "agent", "start"].includes(process.argv[2]);
  if (movesBulkData && !process.execArgv.includes("--no-external-memory-accounted-in-global-limit"))
    process.getBuiltinModule("node:v8").setFlagsFromString("--external-memory-accounted-in-global-limit");
  // The short-lived technician commands run from the CLI bundle when it is
  // fresh (`npm ci` and `npm run build` make it): `guru run` loads five chunks
  // of JavaScript in a fraction of the time ~170 TypeScript modules take. The
  // long-running commands always run from the sources. One process never mixes
  // the two: each would have its own copy of a class such as GuruError, and
  // instanceof would fail across them. GURU_CLI_BUNDLE=off runs the sources;
  // GURU_CLI_BUNDLE=DIR runs the bundle built into DIR.
  const { longRunningCommands } = await import("./long-running-commands.js");
  const { cliBundleEntry } = await import("./cli-bundle.js");
  const bundleDir = process.env.GURU_CLI_BUNDLE || fileURLToPath(new URL("../dist/cli/", import.meta.url));
  const longRunning = Object.hasOwn(longRunningCommands, process.argv[2] ?? "");
  const entry = longRunning || bundleDir === "off" ? undefined : cliBundleEntry(bundleDir);
  const { main } = entry === undefined ? await import("../cli/main.ts") : await import(entry);
  main(process.argv.slice(2)).then(
    (code) => {
      if (typeof code === "number") process.exitCode = code;
    },
    (err) => {
      // Some libraries throw plain objects (the embedded database on a full disk did): show what they hold, not "[object Object]".
      const text =
        err instanceof Error
          ? err.message
          : typeof err === "object" && err !== null
            ? process.getBuiltinModule("node:util").inspect(err, { depth: 3 })
            : String(err);
      process.stderr.write(`guru: ${text}\n`);
      process.exitCode = 1;
    },
  );
}
