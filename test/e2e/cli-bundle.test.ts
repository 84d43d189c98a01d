// The CLI bundle (scripts/build-cli.ts), built into a temp dir: bin/guru.js
// runs the technician commands from it and the long-running ones from the
// sources, and a command gives the same stdout, stderr and exit code from
// the bundle as from the sources, against a real server and agent.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliBundleEntry } from "../../bin/cli-bundle.js";
import { longRunningCommands } from "../../bin/long-running-commands.js";
import { buildCliBundle } from "../../scripts/build-cli.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `guru ARGS…` with GURU_CLI_BUNDLE set: a bundle directory, or "off" for the sources. */
function guru(bundle: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [guruBin, ...args], { env: { ...process.env, ...env, GURU_CLI_BUNDLE: bundle } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let bundleDir: string;
beforeAll(async () => {
  bundleDir = await mkdtemp(join(tmpdir(), "guru-cli-bundle-"));
  await buildCliBundle(bundleDir);
});
afterAll(async () => {
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

describe("the CLI bundle", () => {
  it("is fresh as built, and lists the project files it came from, not the long-running commands' nor node_modules", async () => {
    expect(cliBundleEntry(bundleDir)).toBe(pathToFileURL(join(bundleDir, "main.js")).href);
    const manifest = JSON.parse(await readFile(join(bundleDir, "manifest.json"), "utf8")) as { root: string; files: [string, number, number][] };
    expect(join(bundleDir, manifest.root)).toBe(join(root, "."));
    const files = manifest.files.map(([file]) => file);
    expect(files).toEqual(expect.arrayContaining(["cli/main.ts", "cli/run-command.ts", "lib/errors.ts", "package-lock.json", "bin/long-running-commands.js"]));
    for (const file of Object.values(longRunningCommands)) expect(files).not.toContain(file);
    expect(files.filter((file) => file.includes("node_modules/"))).toEqual([]);
  });

  it("refuses to run a long-running command from the bundle", async () => {
    const { main } = (await import(pathToFileURL(join(bundleDir, "main.js")).href)) as { main(argv: string[]): Promise<number> };
    await expect(main(["server"])).rejects.toThrow("`guru server` runs from the TypeScript sources, not from the CLI bundle");
  });
});

describe("bin/guru.js", () => {
  // A bundle directory whose entry only says it ran: shows which one bin/guru.js loaded.
  let fakeDir: string;
  beforeAll(async () => {
    fakeDir = await mkdtemp(join(tmpdir(), "guru-fake-bundle-"));
    await writeFile(join(fakeDir, "main.js"), 'export async function main(argv) { process.stdout.write("bundle: " + argv.join(" ") + "\\n"); return 7; }\n');
    const manifest = { entry: "main.js", root: relative(fakeDir, root), files: [] };
    await writeFile(join(fakeDir, "manifest.json"), JSON.stringify(manifest));
  });
  afterAll(async () => {
    if (fakeDir) await rm(fakeDir, { recursive: true, force: true });
  });

  it("runs technician commands, help and unknown commands from a fresh bundle", async () => {
    expect(await guru(fakeDir, ["agents", "--json"])).toEqual({ code: 7, stdout: "bundle: agents --json\n", stderr: "" });
    expect(await guru(fakeDir, [])).toEqual({ code: 7, stdout: "bundle: \n", stderr: "" });
    expect(await guru(fakeDir, ["nonsense"])).toEqual({ code: 7, stdout: "bundle: nonsense\n", stderr: "" });
  });

  it("runs the long-running commands from the sources whatever the bundle, and everything from the sources with GURU_CLI_BUNDLE=off", async () => {
    const agent = await guru(fakeDir, ["agent"], { GURU_SERVER: "", GURU_AGENT_KEY: "" });
    expect(agent).toEqual({ code: 1, stdout: "", stderr: "guru agent: no server: pass --server URL or set GURU_SERVER\n" });
    const off = await guru("off", ["nonsense"]);
    expect(off.code).toBe(2);
    expect(off.stderr).toMatch(/^guru: unknown command "nonsense"\n\nusage: guru <command>/);
  });

  it("answers --version without either", async () => {
    const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
    expect(await guru(fakeDir, ["--version"])).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });
});

// The comparison does not depend on the database: embedded PGlite only.
describe("a command from the bundle and from the sources", () => {
  let t: TestServer;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite" });
    await t.startAgent("local");
    const tech = await t.createTech("bundle-tech");
    env = { GURU_URL: t.url, GURU_TOKEN: tech.token };
  });
  afterAll(async () => {
    await t?.close();
  });

  async function same(args: string[], extraEnv: Record<string, string> = {}): Promise<Result> {
    const fromBundle = await guru(bundleDir, args, { ...env, ...extraEnv });
    const fromSources = await guru("off", args, { ...env, ...extraEnv });
    expect(fromBundle).toEqual(fromSources);
    return fromBundle;
  }

  it("runs a remote command with its output and exit code", async () => {
    expect(await same(["run", "local", "--", "echo hi; echo err >&2; exit 3"])).toEqual({ code: 3, stdout: "hi\n", stderr: "err\n" });
    expect(await same(["ls", `local:${t.tempDir}`, "--json"])).toMatchObject({ code: 0 });
  });

  it("refuses an unknown agent, a bad token and an unreachable server with the same hints", async () => {
    // A GuruError thrown in the CLI itself: main() knows it by instanceof.
    const unknown = await same(["run", "no-such-agent", "--", "true"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^guru run: no agent named "no-such-agent"/);
    expect((await same(["agents"], { GURU_TOKEN: "not-a-token" })).code).toBe(1);
    expect((await same(["agents"], { GURU_URL: "http://127.0.0.1:1" })).stderr).toMatch(/^guru agents: /);
  });

  it("never loads Node's bundled HTTP client (undici), HTTP/2 or TLS for a remote command over plain HTTP from the bundle", async () => {
    // Reported at exit by a preloaded module: each is milliseconds of a cold `guru run`.
    const report = `data:text/javascript,process.on("exit",()=>process.stderr.write("loaded: "+["undici","http2","tls"].filter((name)=>process.moduleLoadList.some((m)=>m.includes(name))).join(",")+"\\n"))`;
    const run = await new Promise<Result>((resolve) => {
      execFile(
        process.execPath,
        ["--import", report, guruBin, "run", "local", "--", "echo hi"],
        { env: { ...process.env, ...env, GURU_CLI_BUNDLE: bundleDir } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(run).toEqual({ code: 0, stdout: "hi\n", stderr: "loaded: \n" });
  });

  it("prints the same usage and usage errors", async () => {
    expect((await same([])).code).toBe(2);
    expect((await same(["help"])).code).toBe(0);
    expect((await same(["run"])).code).not.toBe(0);
    expect((await same(["bogus"])).stderr).toMatch(/^guru: unknown command "bogus"/);
    // Not the early answer of bin/guru.js: main() reads package.json relative to lib/version.ts.
    expect((await same(["--version", "--verbose"])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
