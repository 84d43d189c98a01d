// The per-package version check, run against a copy of the contract in a
// temp dir with real buf: an unchanged package passes; a change without a
// new version fails; a new version without its image fails; a released new
// version passes; a breaking change fails whatever the version.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufRunner, checkVersionedPackage, readPackageVersions, versionedPackages } from "./package-versions.ts";

const repo = new URL("../..", import.meta.url).pathname;
const pkg = versionedPackages.find((p) => p.name === "guru.integration.v1")!;

describe("per-package contract versions", () => {
  let root: string;
  let buf: (args: string[]) => void;
  const sessionsProto = () => join(root, "proto/guru/integration/v1/sessions.proto");
  const check = (version: string) => checkVersionedPackage({ root, pkg, documented: version, implemented: version, buf });

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "guru-contract-fixture-"));
    for (const path of ["buf.yaml", "proto", "contract/integration"]) cpSync(join(repo, path), join(root, path), { recursive: true });
    buf = bufRunner(root, join(repo, "node_modules/.bin"), { quiet: true });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reads each package's version from CONTRACT.md", () => {
    const versions = readPackageVersions(readFileSync(join(repo, "CONTRACT.md"), "utf8"));
    expect(versions.get("guru.integration.v1")).toBe("1.0.0");
  });

  it("passes the released package as it is, comments changed or not", () => {
    expect(check("1.0.0")).toEqual([]);
    writeFileSync(sessionsProto(), readFileSync(sessionsProto(), "utf8").replace("// Who asked, who answered", "// Who asked and who answered"));
    expect(check("1.0.0")).toEqual([]);
  });

  it("fails a change without a new version, then a new version without its image, and passes once it is released", () => {
    writeFileSync(
      sessionsProto(),
      readFileSync(sessionsProto(), "utf8").replace("  string close_reason = 13;\n", "  string close_reason = 13;\n  string note = 14;\n"),
    );
    const unbumped = check("1.0.0");
    expect(unbumped).toHaveLength(1);
    expect(unbumped[0]).toMatch(/guru\.integration\.v1 changed since its release 1\.0\.0: give it a new version/);
    const unreleased = check("1.1.0");
    expect(unreleased[0]).toMatch(/has no released image contract\/integration\/1\.1\.0\.binpb/);
    buf(["build", "--path", pkg.protoDir, "--exclude-source-info", "-o", join(pkg.imageDir, "1.1.0.binpb")]);
    expect(check("1.1.0")).toEqual([]);
  });

  it("fails a breaking change against any released image, and versions that disagree", () => {
    writeFileSync(sessionsProto(), readFileSync(sessionsProto(), "utf8").replace("  string close_reason = 13;\n", ""));
    const problems = check("1.1.0");
    expect(problems.some((p) => /breaks its released contract 1\.0\.0/.test(p))).toBe(true);
    expect(problems.some((p) => /breaks its released contract 1\.1\.0/.test(p))).toBe(true);
    expect(checkVersionedPackage({ root, pkg, documented: "1.1.0", implemented: "1.0.0", buf })[0]).toMatch(/make them agree/);
    expect(checkVersionedPackage({ root, pkg, documented: undefined, implemented: "1.0.0", buf })[0]).toMatch(/no row for guru\.integration\.v1/);
  });
});
