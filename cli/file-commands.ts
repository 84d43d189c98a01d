// `guru cp SRC DST` (one side AGENT:PATH) and `guru ls AGENT:PATH`. Transfers
// resume by themselves after transient failures; `--resume` continues one an
// earlier run left unfinished. Progress goes to stderr: a bar on a terminal,
// plain lines otherwise; the result goes to stdout.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, stat, writeFile, realpath } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { describeFailure } from "./error-hints.ts";
import { FileType } from "../gen/guru/api/v1/files_pb.js";
import type { ApiClients } from "../lib/api-client.ts";
import { GuruError } from "../lib/errors.ts";
import { downloadFile, isRetryable, sha256OfFile, uploadFile } from "../lib/file-transfer.ts";
import { parseArgs } from "../lib/flags.ts";
import { connect, resolveAgent, tunnelTo } from "./connection.ts";
import { createProgress } from "./progress.ts";

const out = (line: string) => process.stdout.write(`${line}\n`);

/** `AGENT:PATH`, or undefined for a local path (`./a:b`, `/x`, and `C:\…` on Windows stay local). */
export function parseRemote(spec: string): { agent: string; path: string } | undefined {
  const colon = spec.indexOf(":");
  if (colon <= 0) return undefined;
  const agent = spec.slice(0, colon);
  if (agent.includes("/") || agent.includes("\\")) return undefined;
  if (process.platform === "win32" && agent.length === 1) return undefined;
  return { agent, path: spec.slice(colon + 1) || "." };
}

/** Tunnels for the run: the technician's own, or one opened here and closed at the end. */
function tunnels(api: ApiClients, agentId: string) {
  const opened = new Set<string>();
  return {
    async session() {
      const t = await tunnelTo(api, agentId);
      if (t.opened) opened.add(t.sessionId);
      return t.sessionId;
    },
    async closeOpened() {
      for (const sessionId of opened) await api.sessions.closeTunnel({ sessionId }).catch(() => {});
    },
  };
}

function stateFile(key: string): string {
  const dir = process.env.GURU_CLI_STATE_DIR || join(homedir(), ".guru", "transfers");
  return join(dir, `${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`);
}

/**
 * What `--resume` needs of an interrupted upload: its id, and the local file's
 * modification time then (the state file's name already holds its path and
 * size). A file modified since is sent again from the start; content changed
 * without a new time still fails the SHA-256 check at the end.
 */
interface UploadState {
  uploadId: string;
  mtimeMs: number;
}

async function readState(file: string): Promise<Partial<UploadState> | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Partial<UploadState>;
  } catch {
    return undefined;
  }
}

export async function cpCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, ["resume", "json", "no-overwrite", "no-backup", "quiet"]);
  if (positionals.length !== 2) throw new GuruError("invalid", "usage: guru cp [--resume] [--no-overwrite] [--no-backup] SRC DST, with AGENT:PATH on one side");
  const [src, dst] = positionals;
  const from = parseRemote(src);
  const to = parseRemote(dst);
  const remote = from ?? to;
  if (remote === undefined || (from !== undefined && to !== undefined)) throw new GuruError("invalid", "exactly one of SRC and DST must be AGENT:PATH");
  const api = connect(flags);
  const agent = await resolveAgent(api, remote.agent);
  const tunnel = tunnels(api, agent.agentId);
  const progress = createProgress({ label: to ? "upload" : "download", tty: process.stderr.isTTY === true && !flags.quiet, quiet: flags.quiet === true });
  const onRetry = (err: unknown, delayMs: number) => progress.note(`retrying in ${(delayMs / 1000).toFixed(1)} s: ${ConnectError.from(err).rawMessage}`);
  try {
    if (to) {
      const localPath = src;
      const { size, mtimeMs } = await stat(localPath);
      const remotePath = to.path.endsWith("/") ? to.path + basename(localPath) : to.path;
      const state = stateFile(`${agent.agentId}\n${remotePath}\n${await realpath(localPath)}\n${size}`);
      const previous = flags.resume ? await readState(state) : undefined;
      const resumable = previous?.mtimeMs === mtimeMs && typeof previous.uploadId === "string";
      if (flags.resume && !resumable) progress.note("nothing to resume for this file; starting over");
      const result = await uploadFile({
        api,
        session: tunnel.session,
        localPath,
        remotePath,
        overwrite: !flags["no-overwrite"],
        // --no-backup: replace without keeping the old file; else the agent's setting (keep one).
        keepBackup: flags["no-backup"] ? false : undefined,
        bulk: api.endpoint,
        uploadId: resumable ? previous.uploadId : undefined,
        onStarted: (uploadId) =>
          void mkdir(join(state, ".."), { recursive: true }).then(() =>
            writeFile(state, JSON.stringify({ uploadId, mtimeMs } satisfies UploadState), { mode: 0o600 }),
          ),
        onProgress: (p) => progress.update(p.done, p.total),
        onRetry,
      }).catch(async (err: unknown) => {
        // Only a transient failure leaves something worth resuming.
        if (!isRetryable(err)) await rm(state, { force: true });
        throw err;
      });
      await rm(state, { force: true });
      progress.done();
      if (flags.json) out(JSON.stringify({ direction: "upload", path: result.path, size: result.size, sha256: result.sha256, backupPath: result.backupPath }));
      else
        out(
          `${localPath} → ${agent.name}:${result.path}  ${result.size} bytes  sha256 ${result.sha256}${result.backupPath ? `  (previous file kept as ${result.backupPath})` : ""}`,
        );
    } else {
      let localPath = dst;
      const existing = await stat(localPath).catch(() => undefined);
      if (existing?.isDirectory()) localPath = join(localPath, basename(remote.path));
      const result = await downloadFile({
        api,
        session: tunnel.session,
        remotePath: remote.path,
        localPath,
        resume: flags.resume === true,
        bulk: api.endpoint,
        onProgress: (p) => progress.update(p.done, p.total),
        onRetry,
      });
      progress.done();
      const sha256 = result.resumedFrom > 0 ? await sha256OfFile(localPath) : result.rangeSha256;
      if (flags.json)
        out(JSON.stringify({ direction: "download", path: localPath, remotePath: result.remotePath, size: result.size, sha256, mimeType: result.mimeType }));
      else out(`${agent.name}:${result.remotePath} → ${localPath}  ${result.size} bytes  sha256 ${sha256}  ${result.mimeType}`);
    }
    return 0;
  } catch (err) {
    progress.fail();
    const message = describeFailure(err) ?? ConnectError.from(err).rawMessage;
    process.stderr.write(`guru cp: ${message}${isRetryable(err) ? "\n(run again with --resume to continue)" : ""}\n`);
    return 1;
  } finally {
    await tunnel.closeOpened();
  }
}

const typeChar: Record<FileType, string> = {
  [FileType.UNSPECIFIED]: "?",
  [FileType.FILE]: "-",
  [FileType.DIR]: "d",
  [FileType.SYMLINK]: "l",
  [FileType.OTHER]: "?",
};

export async function lsCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, ["json"]);
  const remote = positionals.length === 1 ? (parseRemote(positionals[0]) ?? { agent: positionals[0], path: "." }) : undefined;
  if (remote === undefined) throw new GuruError("invalid", "usage: guru ls AGENT:PATH");
  const api = connect(flags);
  const agent = await resolveAgent(api, remote.agent);
  const tunnel = tunnels(api, agent.agentId);
  try {
    const sessionId = await tunnel.session();
    let pageToken = "";
    do {
      const page = await api.files.listDirectory({ sessionId, path: remote.path, pageSize: 1000, pageToken });
      for (const e of page.entries) {
        const modified = e.modifiedAt ? timestampDate(e.modifiedAt).toISOString() : "";
        if (flags.json) out(JSON.stringify({ name: e.name, type: FileType[e.type].toLowerCase(), size: Number(e.size), mode: e.mode, modified }));
        else
          out(`${typeChar[e.type]}${e.mode.toString(8).padStart(4, "0")} ${String(e.size).padStart(12)} ${modified.slice(0, 19).replace("T", " ")}  ${e.name}`);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return 0;
  } catch (err) {
    process.stderr.write(`guru ls: ${describeFailure(err) ?? ConnectError.from(err).rawMessage}\n`);
    return 1;
  } finally {
    await tunnel.closeOpened();
  }
}
