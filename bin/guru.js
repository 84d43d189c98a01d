#!/usr/bin/env node
// The `guru` binary. Node 24 runs the TypeScript sources by type stripping.
import { main } from "../cli/main.ts";

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === "number") process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`guru: ${err?.message ?? err}\n`);
    process.exitCode = 1;
  },
);
