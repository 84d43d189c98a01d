// The contract gate run by `npm test`: lint, formatting, a gen/ that matches
// the .proto files, and no breaking change against the released baseline.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const contractVersion = readContractVersion();
const { contractVersion: implementedVersion } = await import("../lib/contract-version.ts");
const { integrationContractVersion } = await import("../lib/integration-contract-version.ts");
const { bufRunner, checkVersionedPackage, readPackageVersions, versionedPackages } = await import("./contract/package-versions.ts");

const binDir = join(root, "node_modules/.bin");

function buf(args: string[]): void {
  // buf finds the local protoc-gen-es plugin on PATH.
  const env = { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ""}` };
  execFileSync(join(binDir, "buf"), args, { cwd: root, stdio: "inherit", env });
}

function readContractVersion(): string {
  const text = readFileSync(join(root, "CONTRACT.md"), "utf8");
  const match = /^Current version: `(\d+\.\d+\.\d+)`/m.exec(text);
  if (!match) throw new Error("CONTRACT.md has no 'Current version: `x.y.z`' line");
  return match[1];
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

function compareTrees(expected: string, actual: string): string[] {
  const want = new Map(listFiles(expected).map((f) => [relative(expected, f), readFileSync(f, "utf8")]));
  const have = new Map(listFiles(actual).map((f) => [relative(actual, f), readFileSync(f, "utf8")]));
  const problems: string[] = [];
  for (const [file, text] of want) {
    if (!have.has(file)) problems.push(`missing from gen/: ${file}`);
    else if (have.get(file) !== text) problems.push(`stale in gen/: ${file}`);
  }
  for (const file of have.keys()) if (!want.has(file)) problems.push(`not generated from proto/: gen/${file}`);
  return problems;
}

buf(["lint"]);
buf(["format", "-d", "--exit-code"]);

const scratch = mkdtempSync(join(tmpdir(), "guru-gen-"));
try {
  buf(["generate", "-o", scratch]);
  const problems = compareTrees(join(scratch, "gen"), join(root, "gen"));
  if (problems.length > 0) {
    process.stderr.write(`${problems.join("\n")}\nRun 'npm run generate' and commit gen/.\n`);
    process.exit(1);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

// Against every released contract, not only the last: a change that an
// intermediate release let through must still fail here.
if (implementedVersion !== contractVersion) {
  process.stderr.write(`CONTRACT.md says ${contractVersion}, lib/contract-version.ts says ${implementedVersion}: make them agree\n`);
  process.exit(1);
}
const released = readdirSync(join(root, "contract"))
  .filter((f) => f.endsWith(".binpb"))
  .map((f) => f.slice(0, -".binpb".length));
if (!released.includes(contractVersion)) {
  process.stderr.write(
    `CONTRACT.md says ${contractVersion}, but there is no contract/${contractVersion}.binpb; run 'npx --no -- buf build -o contract/${contractVersion}.binpb'\n`,
  );
  process.exit(1);
}
for (const version of released) buf(["breaking", "--against", join("contract", `${version}.binpb`)]);

// Packages versioned on their own, each against its own released images.
const documented = readPackageVersions(readFileSync(join(root, "CONTRACT.md"), "utf8"));
const implemented: Record<string, string> = { "guru.integration.v1": integrationContractVersion };
for (const pkg of versionedPackages) {
  const problems = checkVersionedPackage({ root, pkg, documented: documented.get(pkg.name), implemented: implemented[pkg.name], buf: bufRunner(root, binDir) });
  if (problems.length > 0) {
    process.stderr.write(`${problems.join("\n")}\n`);
    process.exit(1);
  }
}
const own = versionedPackages.map((p) => `${p.name} ${documented.get(p.name)}`).join(", ");
process.stdout.write(`contract ok: lint, format, gen/ current, no breaking change against ${released.join(", ")}; ${own} as released\n`);
