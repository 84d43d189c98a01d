// The agent's path allowlist. Every file operation and every exec working
// directory goes through resolve(): the answer is the REAL path (no '..', no
// symlinks) and it lies inside one of the allowed roots, or the call throws.
//
// '..' is resolved lexically first (as path.resolve does), then symlinks are
// resolved by the filesystem; callers must use the returned path, never the
// input, so what is checked is what is opened. Windows compares paths
// case-insensitively. A non-existent path is refused as "denied" (not
// "not_found") when its nearest existing ancestor lies outside, so the guard
// cannot be used to probe for files outside the allowlist.
//
// The check is lexical first: before any filesystem call the resolved input
// must lie under an allowed root (as written or as resolved), and on Windows
// it must not be a UNC, \\?\ or \\.\ path, a device name or an alternate
// data stream (windows-path-rules.ts). So a path outside never reaches the
// filesystem (no probing, no connection to a network host). The platform
// (hence the path module) is a dependency, so the Windows rules run in tests anywhere.
import * as nodeFs from "node:fs";
import nodePath from "node:path";
import { GuruError } from "../../lib/errors.ts";
import { windowsPathForm, windowsPathRefusal } from "./windows-path-rules.ts";

export interface PathGuard {
  readonly allowedPaths: readonly string[];
  /** The real path inside the allowlist, after resolving '..' and symlinks. Relative paths resolve against allowedPaths[0].
   *  mustExist (default true): the path must exist. When false (a file about to be created) the parent must exist and resolve inside. */
  resolve(path: string, options?: { mustExist?: boolean }): Promise<string>;
}

/** The filesystem calls the guard needs; injectable so Windows rules can be tested on any OS. */
export interface PathGuardFs {
  realpath(path: string): Promise<string>;
  realpathSync(path: string): string;
  lstat(path: string): Promise<{ isSymbolicLink(): boolean }>;
  readlink(path: string): Promise<string>;
}

export interface PathGuardOptions {
  platform?: NodeJS.Platform;
  /** Tests only: a fake filesystem (defaults to node:fs). */
  fs?: PathGuardFs;
}

// Linux gives up after 40 links (ELOOP); following dangling links ourselves, we do the same.
const maxSymlinkHops = 40;

const nodeGuardFs: PathGuardFs = {
  realpath: (p) => nodeFs.promises.realpath(p),
  realpathSync: (p) => nodeFs.realpathSync.native(p),
  lstat: (p) => nodeFs.promises.lstat(p),
  readlink: (p) => nodeFs.promises.readlink(p),
};

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

const isMissing = (err: unknown) => errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR";

export function createPathGuard(allowedPaths: string[], options: PathGuardOptions = {}): PathGuard {
  const platform = options.platform ?? process.platform;
  const P = platform === "win32" ? nodePath.win32 : nodePath.posix;
  const fs = options.fs ?? nodeGuardFs;
  const fold = platform === "win32" ? (s: string) => s.toLowerCase() : (s: string) => s;

  // Roots are compared by their real paths. A root that does not exist (yet)
  // keeps its lexical form: nothing real can lie under it until it exists, and
  // if it later appears as a symlink its contents resolve elsewhere and are refused.
  const lexicalRoots = allowedPaths.map((root) => {
    if (typeof root !== "string" || root === "" || !P.isAbsolute(root)) {
      throw new GuruError("invalid", `allowed path "${String(root)}" must be an absolute path`, { details: { allowedPaths } });
    }
    return P.resolve(root);
  });
  const roots = lexicalRoots.map((lexical) => {
    try {
      return fs.realpathSync(lexical);
    } catch (err) {
      if (isMissing(err)) return lexical;
      throw err;
    }
  });
  const foldedRoots = roots.map((r) => fold(r));
  // A root that is itself reached through a symlink may be named either way by a caller.
  const foldedLexicalRoots = [...new Set([...foldedRoots, ...lexicalRoots.map((r) => fold(r))])];
  const rootForms = platform === "win32" ? [...lexicalRoots, ...roots].map(windowsPathForm) : [];

  function isInside(real: string, among: readonly string[] = foldedRoots): boolean {
    const candidate = fold(real);
    return among.some((root) => {
      if (candidate === root) return true;
      // "/allowed" must not admit "/allowed-evil": require a separator after the root.
      const prefix = root.endsWith(P.sep) ? root : root + P.sep;
      return candidate.startsWith(prefix);
    });
  }

  function deniedError(input: string): GuruError {
    return new GuruError("denied", `path "${input}" is outside the allowed paths (${roots.join(", ")})`, {
      reason: "PATH_NOT_ALLOWED",
      metadata: { path: input },
      details: { path: input, allowedPaths: [...roots] },
    });
  }

  function fsError(err: unknown, input: string): GuruError {
    const code = errnoCode(err);
    if (code === "ELOOP") return new GuruError("invalid", `path "${input}" has too many levels of symbolic links`, { details: { path: input } });
    if (code === "EACCES" || code === "EPERM")
      return new GuruError("denied", `permission denied resolving "${input}"`, {
        cause: err,
        reason: "FILE_ACCESS_DENIED",
        metadata: { path: input },
        details: { path: input },
      });
    if (code === "ENAMETOOLONG") return new GuruError("invalid", `path "${input}" is too long`, { details: { path: input } });
    return new GuruError("internal", `cannot resolve "${input}"`, { cause: err, details: { path: input } });
  }

  /** The real path of abs, or of its nearest existing ancestor joined with the missing components (counted). */
  async function realOrNearest(abs: string, input: string, hops: number): Promise<{ real: string; missing: number }> {
    if (hops > maxSymlinkHops) throw fsError(Object.assign(new Error("ELOOP"), { code: "ELOOP" }), input);
    try {
      return { real: await fs.realpath(abs), missing: 0 };
    } catch (err) {
      if (!isMissing(err)) throw fsError(err, input);
    }
    const parent = P.dirname(abs);
    if (parent === abs) return { real: abs, missing: 1 }; // a filesystem root (a drive) that does not exist
    const up = await realOrNearest(parent, input, hops);
    const candidate = P.join(up.real, P.basename(abs));
    if (up.missing === 0) {
      // The parent exists, so abs may be a dangling symlink: where it points decides, not where it sits.
      let isLink = false;
      try {
        isLink = (await fs.lstat(candidate)).isSymbolicLink();
      } catch (err) {
        if (!isMissing(err)) throw fsError(err, input);
      }
      if (isLink) {
        const target = await fs.readlink(candidate).catch((err: unknown) => {
          throw fsError(err, input);
        });
        return realOrNearest(P.resolve(up.real, target), input, hops + 1);
      }
    }
    return { real: candidate, missing: up.missing + 1 };
  }

  async function resolve(input: string, resolveOptions: { mustExist?: boolean } = {}): Promise<string> {
    const mustExist = resolveOptions.mustExist ?? true;
    if (typeof input !== "string" || input === "") throw new GuruError("invalid", "path must be a non-empty string", { details: { path: input } });
    if (input.includes("\0")) throw new GuruError("invalid", "path must not contain NUL bytes", { details: { path: input } });
    if (roots.length === 0) throw deniedError(input);
    const abs = P.resolve(roots[0], input);
    // Lexical checks first: nothing below touches the filesystem for a path refused here.
    if (platform === "win32") {
      const refusal = windowsPathRefusal(abs, input, rootForms);
      if (refusal !== undefined) throw new GuruError("denied", refusal, { details: { path: input, allowedPaths: [...roots] } });
    }
    if (!isInside(abs, foldedLexicalRoots)) throw deniedError(input);
    const { real, missing } = await realOrNearest(abs, input, 0);
    if (!isInside(real)) throw deniedError(input);
    if (missing === 0) return real;
    if (mustExist)
      throw new GuruError("not_found", `path "${input}" does not exist`, { reason: "PATH_NOT_FOUND", metadata: { path: input }, details: { path: input } });
    if (missing > 1)
      throw new GuruError("not_found", `parent directory of "${input}" does not exist`, {
        reason: "PATH_NOT_FOUND",
        metadata: { path: input },
        details: { path: input },
      });
    return real;
  }

  return { allowedPaths: roots, resolve };
}
