// Stat, listings and downloads on an agent, inside the caller's active tunnel.
// Every call is audited, allowed or refused; a download's row carries the
// bytes sent, their SHA-256 and how long it took.
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { AuditOutcome } from "../store/audit.ts";
import type { Store } from "../store/index.ts";
import type { AgentFiles, DirectoryPage, FileReadEvent, StatInfo } from "./agent-files.ts";
import type { Principal } from "./principal.ts";
import type { TechnicianRateLimit } from "./rate-limit.ts";
import type { SessionService } from "./sessions.ts";
import { tunnelEndedError, type SessionWork } from "./session-work.ts";

export interface FileServiceOptions {
  store: Store;
  sessions: SessionService;
  agents: AgentFiles;
  logger: Logger;
  /** Downloads by tunnel: a tunnel that ends cancels its downloads. */
  work: SessionWork;
  /** File operations (stat, list, download, upload start) per technician. */
  opRateLimit?: TechnicianRateLimit;
  /** Bytes moved, for metrics. */
  onTransfer?: (direction: "upload" | "download", outcome: AuditOutcome, bytes: number) => void;
}

const maxListPageSize = 5000;

export function requirePath(path: string): string {
  if (typeof path !== "string" || path.trim() === "") throw new GuruError("invalid", "path is required", { metadata: { field: "path" } });
  if (path.includes("\0")) throw new GuruError("invalid", "path must not contain NUL bytes", { metadata: { field: "path" } });
  return path;
}

/** uint64 fields arrive as bigint; beyond 2^53 they cannot name a real byte. */
export function byteCount(value: bigint | number, name: string): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new GuruError("invalid", `${name} must be a non-negative integer below 2^53`, { metadata: { field: name }, details: { [name]: String(value) } });
  return n;
}

export function outcomeOf(err: GuruError): AuditOutcome {
  return err.kind === "denied" ? "refused" : "failed";
}

export function createFileService(options: FileServiceOptions) {
  const { store, sessions, agents, logger } = options;

  /** Runs an operation in the caller's session; refusals before the agent is asked are audited too. */
  async function inSession<T>(principal: Principal, sessionId: string, operation: string, path: string, run: (agentId: string) => Promise<T>): Promise<T> {
    const started = Date.now();
    let agentId: string | undefined;
    try {
      const session = await sessions.requireActive(principal, sessionId);
      agentId = session.agentId;
      requirePath(path);
      await options.opRateLimit?.hit(principal.technicianId);
      const result = await run(session.agentId);
      await store.audit.file({
        technicianId: principal.technicianId,
        agentId,
        sessionId,
        operation,
        path,
        outcome: "allowed",
        durationMs: Date.now() - started,
      });
      return result;
    } catch (err) {
      const error = toGuruError(err);
      await store.audit
        .file({
          technicianId: principal.technicianId,
          agentId,
          sessionId: agentId ? sessionId : null,
          operation,
          path,
          outcome: outcomeOf(error),
          error: error.message,
          durationMs: Date.now() - started,
        })
        .catch((auditErr: unknown) => logger.error({ err: auditErr }, "file audit failed"));
      throw error;
    }
  }

  function stat(principal: Principal, sessionId: string, path: string): Promise<StatInfo> {
    return inSession(principal, sessionId, "stat", path, (agentId) => agents.stat(agentId, { sessionId, path }));
  }

  function listDirectory(principal: Principal, req: { sessionId: string; path: string; pageSize: number; pageToken: string }): Promise<DirectoryPage> {
    return inSession(principal, req.sessionId, "list", req.path, (agentId) => {
      if (req.pageSize > maxListPageSize) throw new GuruError("invalid", `pageSize is at most ${maxListPageSize}`, { metadata: { field: "pageSize" } });
      return agents.listDirectory(agentId, req);
    });
  }

  /**
   * Info, chunks, summary. The agent reads only as fast as the caller pulls
   * (credit is granted as chunks are consumed); the caller's signal cancels it.
   */
  async function* readFile(
    principal: Principal,
    req: { sessionId: string; path: string; offset: number; length: number },
    signal?: AbortSignal,
  ): AsyncGenerator<FileReadEvent> {
    const started = Date.now();
    const base = { technicianId: principal.technicianId, sessionId: req.sessionId, operation: "read", path: req.path, direction: "download" };
    let agentId: string | undefined;
    let bytes = 0;
    let summary: Extract<FileReadEvent, { type: "summary" }> | undefined;
    let audited = false;
    const inTunnel = options.work.signalFor({ sessionId: req.sessionId, technicianId: principal.technicianId, tokenId: principal.tokenId }, signal);
    const finish = async (outcome: AuditOutcome, error?: GuruError) => {
      audited = true;
      await audit({
        ...base,
        agentId,
        sessionId: agentId ? req.sessionId : null,
        bytes,
        sha256: summary?.sha256,
        outcome,
        error: error?.message,
        durationMs: Date.now() - started,
      });
      options.onTransfer?.("download", outcome, bytes);
    };
    try {
      agentId = (await sessions.requireActive(principal, req.sessionId)).agentId;
      requirePath(req.path);
      await options.opRateLimit?.hit(principal.technicianId);
      for await (const event of agents.readFile(agentId, req, inTunnel.signal)) {
        if (event.type === "chunk") bytes += event.data.byteLength;
        if (event.type === "summary") summary = event;
        yield event;
      }
      if (summary === undefined) throw new GuruError("unavailable", "the download ended without a summary");
      await finish("allowed");
    } catch (err) {
      const error = tunnelEndedError(inTunnel.signal) ?? (signal?.aborted ? new GuruError("canceled", "the client canceled the download") : toGuruError(err));
      await finish(outcomeOf(error), error);
      throw error;
    } finally {
      inTunnel.release();
      // The consumer stopped pulling early (its stream closed): still one row.
      if (!audited) await (summary ? finish("allowed") : finish("failed", new GuruError("canceled", "the client stopped reading the download")));
    }
  }

  async function audit(row: Parameters<Store["audit"]["file"]>[0]): Promise<void> {
    await store.audit.file(row).catch((err: unknown) => logger.error({ err }, "file audit failed"));
  }

  return { stat, listDirectory, readFile };
}

export type FileService = ReturnType<typeof createFileService>;
