// Per-package contract versions. A package with a version of its own (today
// guru.integration.v1) has its released images under contract/<dir>/ and is
// checked on its own: CONTRACT.md and the code agree on its version, the
// image of that version exists, nothing breaks against any of its images, and
// the package is exactly what was released under its current version. A
// change to its .proto files without a new version therefore fails.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

export interface VersionedPackage {
  /** "guru.integration.v1" */
  name: string;
  /** Its .proto files, relative to the repository root: "proto/guru/integration". */
  protoDir: string;
  /** Its released images: "contract/integration" holds 1.0.0.binpb, ... */
  imageDir: string;
}

export const versionedPackages: VersionedPackage[] = [{ name: "guru.integration.v1", protoDir: "proto/guru/integration", imageDir: "contract/integration" }];

/** The command that releases a package's image for a version. */
function releaseCommand(pkg: VersionedPackage, version: string): string {
  return `npx --no -- buf build --path ${pkg.protoDir} --exclude-source-info -o ${pkg.imageDir}/${version}.binpb`;
}

/** The versions CONTRACT.md's "Package versions" table gives: | `guru.integration.v1` | `1.0.0` | ... */
export function readPackageVersions(contractMd: string): Map<string, string> {
  const versions = new Map<string, string>();
  for (const match of contractMd.matchAll(/^\|\s*`(guru\.[a-z]+\.v\d+)`\s*\|\s*`(\d+\.\d+\.\d+)`/gm)) versions.set(match[1], match[2]);
  return versions;
}

/**
 * A fingerprint of the package's own files in an image: source info and
 * imported files (google/protobuf/...) left out, so comments and the buf
 * release do not count, only what a client can see.
 */
function packageFingerprint(image: Uint8Array, packageName: string): string {
  const set = fromBinary(FileDescriptorSetSchema, image);
  const hash = createHash("sha256");
  const files = set.file.filter((f) => f.package === packageName).sort((a, b) => a.name.localeCompare(b.name));
  if (files.length === 0) throw new Error(`the image holds no file of package ${packageName}`);
  for (const file of files) {
    // buf's own annotations travel as unknown fields; they are not the contract.
    const clean = fromBinary(FileDescriptorProtoSchema, toBinary(FileDescriptorProtoSchema, file), { readUnknownFields: false });
    clean.sourceCodeInfo = undefined;
    hash.update(file.name).update(toBinary(FileDescriptorProtoSchema, clean));
  }
  return hash.digest("hex");
}

export interface CheckOptions {
  root: string;
  pkg: VersionedPackage;
  /** The version CONTRACT.md states; undefined when it states none. */
  documented: string | undefined;
  /** The version the code reports (GetCapabilities). */
  implemented: string;
  /** Runs buf with these arguments in root; throws when it fails. */
  buf(args: string[]): void;
}

/** Every problem with one package, as messages that say what to do; empty when it is fine. */
export function checkVersionedPackage({ root, pkg, documented, implemented, buf }: CheckOptions): string[] {
  if (documented === undefined) return [`CONTRACT.md's "Package versions" table has no row for ${pkg.name}`];
  if (documented !== implemented) return [`CONTRACT.md says ${pkg.name} is ${documented}, the code says ${implemented}: make them agree`];
  const imageDir = join(root, pkg.imageDir);
  const released = existsSync(imageDir)
    ? readdirSync(imageDir)
        .filter((f) => f.endsWith(".binpb"))
        .map((f) => f.slice(0, -".binpb".length))
    : [];
  if (!released.includes(documented)) {
    return [`${pkg.name} ${documented} has no released image ${pkg.imageDir}/${documented}.binpb; release it with '${releaseCommand(pkg, documented)}'`];
  }
  const problems: string[] = [];
  for (const version of released) {
    try {
      buf(["breaking", "--against", join(pkg.imageDir, `${version}.binpb`)]);
    } catch {
      problems.push(`${pkg.name} breaks its released contract ${version} (see buf's report above); a breaking change needs a new package (v2)`);
    }
  }
  const scratch = mkdtempSync(join(tmpdir(), "guru-contract-"));
  try {
    const built = join(scratch, "current.binpb");
    buf(["build", "--path", pkg.protoDir, "--exclude-source-info", "-o", built]);
    const current = packageFingerprint(readFileSync(built), pkg.name);
    const release = packageFingerprint(readFileSync(join(imageDir, `${documented}.binpb`)), pkg.name);
    if (current !== release) {
      problems.push(
        `${pkg.name} changed since its release ${documented}: give it a new version (CONTRACT.md "Package versions" and the code), add a changelog entry, and release it with '${releaseCommand(pkg, "<new version>")}'`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return problems;
}

/** buf from node_modules, run in root; `quiet` drops its reports (tests of the check itself). */
export function bufRunner(root: string, binDir: string, options: { quiet?: boolean } = {}): (args: string[]) => void {
  const env = { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ""}` };
  const out = options.quiet ? "ignore" : "inherit";
  return (args) => {
    execFileSync(join(binDir, "buf"), args, { cwd: root, stdio: ["ignore", out, out], env });
  };
}
