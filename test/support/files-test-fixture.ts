// Shared by the files tests: a real temp dir with an allowed root and an
// outside directory beside it, a guard over the root, and error assertions.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { GuruError, type ErrorKind } from "../../lib/errors.ts";
import { createPathGuard, type PathGuard } from "../../agent/policy/path-guard.ts";
import type { OpenUploadRequest } from "../../agent/files/uploads.ts";

export interface FilesFixture {
  root: string;
  allowed: string;
  outside: string;
  guard: PathGuard;
  cleanup(): Promise<void>;
}

export async function createFilesFixture(): Promise<FilesFixture> {
  const root = await realpath(await mkdtemp(join(tmpdir(), "guru-files-")));
  const allowed = join(root, "allowed");
  const outside = join(root, "outside");
  await mkdir(allowed);
  await mkdir(outside);
  return { root, allowed, outside, guard: createPathGuard([allowed]), cleanup: () => rm(root, { recursive: true, force: true }) };
}

export async function expectGuruError(promise: Promise<unknown>, kind: ErrorKind): Promise<GuruError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a GuruError of kind ${kind}`).toBeInstanceOf(GuruError);
  expect((err as GuruError).kind, (err as GuruError).message).toBe(kind);
  return err as GuruError;
}

const sha256Hex = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** An upload of `content` to `path` (id "up-1", no overwrite unless `extra` says so). */
export function uploadRequest(path: string, content: Uint8Array, extra: Partial<OpenUploadRequest> = {}): OpenUploadRequest {
  return { uploadId: "up-1", path, size: content.length, sha256: sha256Hex(content), overwrite: false, ...extra };
}
