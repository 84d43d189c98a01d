// Bundles the technician commands of `guru` (cli/main.ts and what it imports)
// into dist/cli/, for a faster cold start: `guru run` loads five JavaScript
// chunks instead of stripping the types of some 170 TypeScript modules. Run by
// `npm ci` (the `prepare` script) and `npm run build`. bin/guru.js runs the
// bundle only while bin/cli-bundle.js finds it fresh, else the sources.
import { rmSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { rolldown, type Plugin } from "rolldown";
import { longRunningCommands } from "../bin/long-running-commands.js";

const root = fileURLToPath(new URL("..", import.meta.url));
export const defaultOutDir = resolve(root, "dist/cli");

// Packages that must stay where npm put them: native addons (bufferutil,
// utf-8-validate, node-pty, pg-native) and PGlite, which reads its WebAssembly
// and data files next to its own modules. Node's built-ins stay external too,
// but for those read through process.getBuiltinModule (builtinsWithoutFacades).
const externalPackages = ["bufferutil", "utf-8-validate", "@lydell/node-pty", "@electric-sql/pglite", "pg-native"];

// The long-running commands' modules, by absolute path, to the command's name.
const longRunningModules = new Map(Object.entries(longRunningCommands).map(([name, file]) => [resolve(root, file), name]));

/** What bin/cli-bundle.js reads: the entry, and each file of the project the bundle came from as [path from root, mtimeMs, size]. */
interface Manifest {
  entry: string;
  root: string;
  files: [string, number, number][];
}

/**
 * Builds the bundle into `outDir` (emptied first) and writes its manifest
 * last, so an interrupted build leaves no manifest and the sources run.
 */
export async function buildCliBundle(outDir: string = defaultOutDir): Promise<{ chunks: number; files: number }> {
  rmSync(outDir, { recursive: true, force: true });
  const sources = new Set<string>();
  const bundle = await rolldown({
    input: resolve(root, "cli/main.ts"),
    cwd: root,
    platform: "node",
    external: (id) => (isBuiltin(id) && !readThroughGetBuiltin(id)) || externalPackages.some((p) => id === p || id.startsWith(`${p}/`)),
    plugins: [builtinsWithoutFacades(), leaveOutLongRunningCommands(), keepModuleUrls(outDir), recordSources(sources)],
    onLog(level, log, defaultHandler) {
      // A warning is a bundle that may not behave as the sources do.
      defaultHandler(level === "warn" ? "error" : level, log);
    },
  });
  try {
    const { output } = await bundle.write({ dir: outDir, format: "esm", entryFileNames: "main.js", chunkFileNames: "[name]-[hash].js" });
    for (const file of ["package-lock.json", "bin/long-running-commands.js", "scripts/build-cli.ts"]) sources.add(resolve(root, file));
    const manifest: Manifest = {
      entry: "main.js",
      root: relative(outDir, root) || ".",
      files: [...sources].sort().map((file) => {
        const { mtimeMs, size } = statSync(file);
        return [relative(root, file).split(sep).join("/"), mtimeMs, size];
      }),
    };
    writeFileSync(resolve(outDir, "manifest.json"), formatManifest(manifest));
    return { chunks: output.length, files: manifest.files.length };
  } finally {
    await bundle.close();
  }
}

/** JSON with one file to a line. */
function formatManifest({ entry, root, files }: Manifest): string {
  const lines = files.map((file) => `  ${JSON.stringify(file)}`);
  return `{\n "entry": ${JSON.stringify(entry)},\n "root": ${JSON.stringify(root)},\n "files": [\n${lines.join(",\n")}\n ]\n}\n`;
}

/**
 * The long-running commands run from the sources (bin/guru.js routes them
 * there), so their modules, and all they alone import, stay out of the bundle.
 * Their place holds a module that fails loudly should one ever be reached.
 */
function leaveOutLongRunningCommands(): Plugin {
  const seen = new Set<string>();
  return {
    name: "leave-out-long-running-commands",
    load(id) {
      const name = longRunningModules.get(id);
      if (name === undefined) return null;
      seen.add(id);
      return `throw new Error(${JSON.stringify(`\`guru ${name}\` runs from the TypeScript sources, not from the CLI bundle`)});\n`;
    },
    buildEnd(error) {
      const missing = [...longRunningModules.keys()].filter((id) => !seen.has(id));
      if (error === undefined && missing.length > 0) {
        this.error(`bin/long-running-commands.js names modules cli/main.ts does not import: ${missing.map((id) => relative(root, id)).join(", ")}`);
      }
    },
  };
}

/**
 * Two kinds of Node built-ins the bundle reads through process.getBuiltinModule
 * instead of importing them:
 *
 * - node:http: an ES import makes Node read every export for the module
 *   facade, getters included, and three of http's (WebSocket, CloseEvent,
 *   MessageEvent) load Node's bundled HTTP client (undici), which a cold
 *   `guru run` never uses (a tenth of its CPU). Its data properties become
 *   named exports: a named import of a getter fails the build, not the run.
 * - node:http2 and node:https: Connect's Node transport imports both for
 *   HTTP/2 and TLS, and loading them (with tls and crypto under https) is
 *   about a tenth of a cold `guru run` over plain HTTP/1.1. They load at the
 *   first use of one of their exports instead: a CommonJS module whose
 *   exports object looks up the built-in when a property is first read.
 */
const facadeFreeBuiltins = new Set(["node:http"]);
const lazyBuiltins = new Set(["node:http2", "node:https"]);

function normalizedBuiltin(id: string): string {
  return id.startsWith("node:") ? id : `node:${id}`;
}

const readThroughGetBuiltin = (id: string) => isBuiltin(id) && (facadeFreeBuiltins.has(normalizedBuiltin(id)) || lazyBuiltins.has(normalizedBuiltin(id)));

function builtinsWithoutFacades(): Plugin {
  const prefix = "\0builtin:";
  return {
    name: "builtins-without-facades",
    resolveId(id) {
      if (!readThroughGetBuiltin(id)) return null;
      return { id: `${prefix}${normalizedBuiltin(id)}`, moduleSideEffects: false };
    },
    load(id) {
      if (!id.startsWith(prefix)) return null;
      const specifier = id.slice(prefix.length);
      const builtin = process.getBuiltinModule(specifier) as Record<string, unknown>;
      const names = Object.getOwnPropertyNames(builtin).filter(
        (name) => name !== "default" && /^[A-Za-z_$][\w$]*$/.test(name) && Object.getOwnPropertyDescriptor(builtin, name)?.get === undefined,
      );
      if (lazyBuiltins.has(specifier)) return lazyBuiltinModule(specifier, names);
      const lines = [`const builtin = process.getBuiltinModule(${JSON.stringify(specifier)});`, "export default builtin;"];
      for (const name of names) lines.push(`export const ${name} = builtin.${name};`);
      return `${lines.join("\n")}\n`;
    },
  };
}

/** A CommonJS module whose exports (the built-in's property names, known at build time) load the built-in when first read. */
function lazyBuiltinModule(specifier: string, names: string[]): string {
  return `const names = ${JSON.stringify(names)};
let builtin;
const load = () => (builtin ??= process.getBuiltinModule(${JSON.stringify(specifier)}));
module.exports = new Proxy({}, {
  get: (_, name) => load()[name],
  has: (_, name) => names.includes(name),
  ownKeys: () => names,
  getOwnPropertyDescriptor: (_, name) => (names.includes(name) ? { configurable: true, enumerable: true, get: () => load()[name] } : undefined),
});
`;
}

/**
 * A bundled module's `import.meta.url` would be its chunk's, in dist/cli/. It
 * stays the URL of the module's own file instead, so file-relative reads
 * (lib/version.ts reads package.json) and createRequire find what they did.
 */
function keepModuleUrls(outDir: string): Plugin {
  return {
    name: "keep-module-urls",
    transform: {
      filter: { code: "import.meta" },
      handler(code, id) {
        if (!isAbsolute(id)) return null; // rolldown's own runtime: its createRequire resolves from the chunk, which is in the project
        if (/\bimport\.meta\.(dirname|filename)\b/.test(code))
          this.error(`${id}: import.meta.dirname and .filename are not rewritten for the bundle; use import.meta.url`);
        const fromChunk = relative(outDir, id).split(sep).map(encodeURIComponent).join("/");
        return code.replace(/\bimport\.meta\.url\b/g, `new URL(${JSON.stringify(fromChunk)}, import.meta.url).href`);
      },
    },
  };
}

/** Collects the project's own files (not node_modules) whose code went into the bundle, for the manifest. */
function recordSources(sources: Set<string>): Plugin {
  return {
    name: "record-sources",
    buildEnd() {
      for (const id of this.getModuleIds()) {
        if (id.startsWith(root) && !id.includes(`${sep}node_modules${sep}`) && !longRunningModules.has(id)) sources.add(id);
      }
    },
  };
}

if (import.meta.main) {
  const started = performance.now();
  const { chunks, files } = await buildCliBundle();
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`guru: CLI bundle in ${relative(process.cwd(), defaultOutDir) || "."}: ${chunks} chunks from ${files} project files, ${ms} ms\n`);
}
