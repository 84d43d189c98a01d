// Resumable uploads as a sequence of unary calls. The upload row (database) is
// bound to the technician and the agent, not to a session: a reconnect of the
// agent closes its session, and the resume happens in a new tunnel of the same
// technician. Per upload the server keeps one agent channel open, reopened
// lazily (same upload id; the agent answers with its real committed offset).
// A chunk returns once its bytes are within the agent's credit, so clients can
// pipeline; committed offsets reach the database in batches, not per chunk.
import { GuruError, toGuruError } from "../../lib/errors.ts";
import { isSha256Hex } from "../../lib/sha256-hex.ts";
import { uploadSha256AtFinish } from "../../lib/wire/features.ts";
import type { Logger } from "../../lib/logging.ts";
import type { AuditOutcome } from "../store/audit.ts";
import type { Store } from "../store/index.ts";
import type { UploadRecord, UploadStatus } from "../store/uploads.ts";
import type { AgentFiles, AgentUploadStream, UploadOutcome } from "./agent-files.ts";
import { byteCount, outcomeOf, requirePath } from "./files.ts";
import { requireUuid } from "./ids.ts";
import type { Principal } from "./principal.ts";
import type { TechnicianRateLimit } from "./rate-limit.ts";
import type { SessionService } from "./sessions.ts";
import type { SessionWork } from "./session-work.ts";
import { createUploadStreams, type LiveUpload } from "./upload-streams.ts";

export interface UploadServiceOptions {
  store: Store;
  sessions: SessionService;
  agents: AgentFiles;
  logger: Logger;
  /** Active uploads untouched this long are aborted by sweepAbandoned(). */
  abandonedAfterMs: number;
  /** Upload channels by tunnel: a tunnel that ends closes them, keeping the partials for a resume. */
  work?: SessionWork;
  /**
   * Active uploads one technician may have to one agent, so one technician
   * cannot hold all of an agent's channels. Finish or abort one to start another.
   */
  maxActivePerTechnicianAgent?: number;
  /** File operations per technician (an upload start counts as one). */
  opRateLimit?: TechnicianRateLimit;
  onTransfer?: (direction: "upload" | "download", outcome: AuditOutcome, bytes: number) => void;
}

export interface UploadView {
  uploadId: string;
  path: string;
  size: number;
  committedOffset: number;
  status: UploadStatus;
  updatedAt: Date;
}

export function createUploadService(options: UploadServiceOptions) {
  const { store, sessions, logger } = options;
  const streams = createUploadStreams({ store, agents: options.agents, logger, work: options.work });
  const maxActive = options.maxActivePerTechnicianAgent ?? Number.POSITIVE_INFINITY;

  async function audit(
    row: UploadRecord,
    outcome: AuditOutcome,
    fields: { bytes?: number; sha256?: string | null; error?: string; sessionId?: string | null },
  ) {
    await store.audit
      .file({
        technicianId: row.technicianId,
        agentId: row.agentId,
        sessionId: fields.sessionId ?? row.sessionId,
        operation: "upload",
        path: row.path,
        direction: "upload",
        bytes: fields.bytes ?? null,
        sha256: fields.sha256 ?? null,
        outcome,
        error: fields.error ?? null,
        durationMs: Date.now() - row.createdAt.getTime(),
      })
      .catch((err: unknown) => logger.error({ err, uploadId: row.id }, "upload audit failed"));
    options.onTransfer?.("upload", outcome, fields.bytes ?? 0);
  }

  /** The caller's upload; admins may look at any (but only the owner may move it on). */
  async function owned(principal: Principal, uploadId: string, forWrite: boolean): Promise<UploadRecord> {
    requireUuid(uploadId, "upload id");
    const row = await store.uploads.get(uploadId);
    if (row === undefined) throw new GuruError("not_found", `no upload ${uploadId}`, { reason: "UPLOAD_NOT_FOUND", metadata: { uploadId } });
    if (row.technicianId !== principal.technicianId && (forWrite || principal.role !== "admin")) {
      throw new GuruError("denied", `upload ${uploadId} belongs to another technician`, { reason: "UPLOAD_NOT_OWNED", metadata: { uploadId } });
    }
    return row;
  }

  function requireActiveUpload(row: UploadRecord): void {
    if (row.status !== "active") {
      throw new GuruError("failed_precondition", `upload ${row.id} is ${row.status}${row.error ? ` (${row.error})` : ""}; start a new upload`, {
        reason: "UPLOAD_NOT_ACTIVE",
        metadata: { uploadId: row.id, status: row.status },
      });
    }
  }

  async function start(principal: Principal, req: { sessionId: string; path: string; size: bigint; sha256: string; overwrite: boolean; keepBackup?: boolean }) {
    const session = await sessions.requireActive(principal, req.sessionId);
    const base = {
      technicianId: principal.technicianId,
      agentId: session.agentId,
      sessionId: session.id,
      operation: "upload",
      path: req.path,
      direction: "upload",
    };
    let row: UploadRecord | undefined;
    try {
      requirePath(req.path);
      const size = byteCount(req.size, "size");
      const sha256 = req.sha256.toLowerCase();
      if (sha256 !== "" && !isSha256Hex(sha256))
        throw new GuruError("invalid", "sha256 must be the 64 hex digits of the whole file's SHA-256", { metadata: { field: "sha256" } });
      if (sha256 === "") await requireSha256AtFinish(session.agentId);
      await options.opRateLimit?.hit(principal.technicianId);
      const input = {
        sessionId: session.id,
        agentId: session.agentId,
        technicianId: principal.technicianId,
        path: req.path,
        size,
        sha256,
        overwrite: req.overwrite,
        keepBackup: req.keepBackup,
      };
      const capped = Number.isFinite(maxActive) ? await store.uploads.createCapped(input, maxActive) : { created: await store.uploads.create(input) };
      if (!("created" in capped)) {
        throw new GuruError(
          "rate_limited",
          `upload cap: at most ${maxActive} active uploads per technician per agent (GURU_MAX_UPLOADS_PER_TECHNICIAN_AGENT); you have ${capped.activeCount}: finish or abort one first`,
          {
            reason: "UPLOADS_EXHAUSTED",
            metadata: { limit: maxActive, active: capped.activeCount },
            details: { setting: "GURU_MAX_UPLOADS_PER_TECHNICIAN_AGENT" },
          },
        );
      }
      row = capped.created;
      const live = await streams.attach(row, session.id);
      logger.info({ uploadId: row.id, agentId: row.agentId, path: row.path, size }, "upload started");
      return { uploadId: row.id, committedOffset: live.stream?.committedOffset ?? 0 };
    } catch (err) {
      const error = toGuruError(err);
      if (row) {
        await store.uploads.setStatus(row.id, "failed", error.message);
        streams.forget(row.id);
      }
      await store.audit
        .file({ ...base, outcome: outcomeOf(error), error: error.message, durationMs: 0 })
        .catch((auditErr: unknown) => logger.error({ err: auditErr }, "upload audit failed"));
      throw error;
    }
  }

  /** An upload may start without its SHA-256 only on an agent that takes it at finish. */
  async function requireSha256AtFinish(agentId: string): Promise<void> {
    const agent = await store.agents.get(agentId);
    if (agent?.wireFeatures.includes(uploadSha256AtFinish)) return;
    throw new GuruError(
      "failed_precondition",
      `agent ${agent?.name ?? agentId} (version ${agent?.agentVersion ?? "unknown"}) needs the file's SHA-256 when the upload starts; start again with it`,
      { reason: "AGENT_NEEDS_SHA256_AT_START", metadata: { agentId } },
    );
  }

  /** The hash FinishUpload checks against: the one StartUpload declared, or the one given now; never two different ones. */
  function expectedSha256(row: UploadRecord, atFinish: string): string {
    const given = atFinish.toLowerCase();
    if (given !== "" && !isSha256Hex(given))
      throw new GuruError("invalid", "sha256 must be the 64 hex digits of the whole file's SHA-256", { metadata: { field: "sha256" } });
    const declared = row.sha256 ?? "";
    if (given !== "" && declared !== "" && given !== declared)
      throw new GuruError("invalid", `sha256 differs from the ${declared} StartUpload declared; nothing was replaced`, { metadata: { field: "sha256" } });
    if (declared === "" && given === "")
      throw new GuruError("invalid", "this upload started without a sha256, so FinishUpload must carry the whole file's SHA-256", {
        metadata: { field: "sha256" },
      });
    return declared || given;
  }

  /** The technician's active tunnel to the upload's agent: the resume after a reconnect runs in a new one. */
  async function sessionFor(row: UploadRecord): Promise<string> {
    const [session] = await store.sessions.list({ agentId: row.agentId, technicianId: row.technicianId ?? undefined, status: "active" });
    if (session === undefined) {
      const agent = await store.agents.get(row.agentId);
      throw new GuruError("failed_precondition", `open a tunnel to ${agent?.name ?? row.agentId} first`, {
        reason: "TUNNEL_REQUIRED",
        metadata: { agentId: row.agentId },
      });
    }
    await store.sessions.touch(session.id);
    return session.id;
  }

  /** The live upload with an open channel in the owner's current tunnel. */
  async function liveFor(principal: Principal, uploadId: string): Promise<LiveUpload> {
    const cached = streams.get(uploadId);
    if (cached && cached.row.technicianId === principal.technicianId && streams.fresh(cached)) return cached;
    // Re-read the row: another call (or server process) may have finished or aborted it.
    const row = await owned(principal, uploadId, true);
    requireActiveUpload(row);
    return streams.attach(row, await sessionFor(row));
  }

  async function chunk(principal: Principal, uploadId: string, offsetIn: bigint, data: Uint8Array) {
    const offset = byteCount(offsetIn, "offset");
    const live = await liveFor(principal, uploadId);
    if (offset + data.byteLength > live.row.size) {
      // The same kind the agent gives for bytes past the declared size.
      throw new GuruError("too_large", `chunk ends at ${offset + data.byteLength}, beyond the declared size ${live.row.size}`, {
        metadata: { uploadId, size: live.row.size, end: offset + data.byteLength },
      });
    }
    await streams.write(live, offset, data);
    return { committedOffset: live.stream?.committedOffset ?? live.received, receivedOffset: live.received };
  }

  async function get(principal: Principal, uploadId: string): Promise<UploadView> {
    let row = await owned(principal, uploadId, false);
    let committedOffset = row.committedOffset;
    if (row.status === "active" && row.technicianId === principal.technicianId) {
      // Ask the agent where it really stands, when a tunnel allows it; the database may lag.
      const live = await liveFor(principal, uploadId).catch(() => streams.get(uploadId));
      row = (await store.uploads.get(uploadId)) ?? row;
      // The agent's word wins over the database's, even when lower (bytes lost in an agent crash).
      committedOffset = live?.stream && !live.stream.failure ? live.stream.committedOffset : row.committedOffset;
    }
    return { uploadId: row.id, path: row.path, size: row.size, committedOffset, status: row.status, updatedAt: row.updatedAt };
  }

  async function finish(principal: Principal, uploadId: string, sha256AtFinish = ""): Promise<UploadOutcome> {
    const row = await owned(principal, uploadId, true);
    if (row.status === "finished") {
      const known = streams.finishedResult(uploadId);
      return known ?? { size: row.size, sha256: row.sha256 ?? "", backupPath: "", path: row.path };
    }
    const expected = expectedSha256(row, sha256AtFinish);
    let live = await liveFor(principal, uploadId);
    if (live.received < live.row.size) {
      // Behind a balancer the bytes may have gone through another node, whose
      // newer channel took the upload over at the agent: this node's count is
      // then stale. Ask the agent, through a channel opened now, before refusing.
      streams.forget(uploadId);
      live = await liveFor(principal, uploadId);
    }
    if (live.received < live.row.size) {
      throw new GuruError(
        "failed_precondition",
        `upload incomplete: ${live.received} of ${live.row.size} bytes received; send the rest from offset ${live.received}`,
        {
          reason: "UPLOAD_INCOMPLETE",
          metadata: { uploadId, expectedOffset: live.received, size: live.row.size },
        },
      );
    }
    const stream = live.stream as AgentUploadStream;
    try {
      // The agent checks the bytes against the hash it was given at the start, or against this one.
      const outcome = await stream.finish(row.sha256 ? "" : expected);
      await store.uploads.markFinished(row.id, outcome.size, outcome.sha256);
      streams.finished(uploadId, outcome);
      await audit(row, "allowed", { bytes: outcome.size, sha256: outcome.sha256, sessionId: live.sessionId });
      logger.info({ uploadId, path: outcome.path, size: outcome.size, backupPath: outcome.backupPath }, "upload finished");
      return outcome;
    } catch (err) {
      const error = toGuruError(err);
      // One rule with the agent: a short upload (failed_precondition, from this
      // server's check above or from the agent) keeps its bytes and stays active
      // for a resume from the agent's committed offset, and so does a lost link.
      // A mismatch (data_loss: the agent discarded the partial), conflict, denied
      // and invalid are final on both sides.
      if (error.kind === "data_loss" || error.kind === "conflict" || error.kind === "denied" || error.kind === "invalid") {
        await store.uploads.setStatus(row.id, "failed", error.message);
        streams.forget(uploadId);
        await audit(row, outcomeOf(error), { bytes: live.received, sha256: expected, error: error.message, sessionId: live.sessionId });
      }
      throw error;
    }
  }

  async function abort(principal: Principal, uploadId: string): Promise<void> {
    const row = await owned(principal, uploadId, true);
    if (row.status !== "active") return;
    let note = "";
    try {
      const live = await liveFor(principal, uploadId);
      await live.stream?.abort("aborted by the technician");
    } catch (err) {
      // Unreachable now: the agent's own sweep removes the partial later.
      note = ` (agent not reached: ${toGuruError(err).message})`;
    }
    streams.forget(uploadId);
    await store.uploads.setStatus(row.id, "aborted", `aborted by the technician${note}`);
    await audit(row, "failed", { bytes: row.committedOffset, error: `aborted by the technician${note}` });
  }

  /** Active uploads untouched for abandonedAfterMs: aborted, the partial deleted when the agent is reachable. */
  async function sweepAbandoned(): Promise<number> {
    const stale = await store.uploads.listStale(options.abandonedAfterMs);
    for (const row of stale) {
      const live = streams.get(row.id);
      if (live?.stream && !live.stream.failure) await live.stream.abort("abandoned").catch(() => {});
      streams.forget(row.id);
      const reason = `abandoned: no activity for ${options.abandonedAfterMs} ms`;
      const updated = await store.uploads.setStatus(row.id, "aborted", reason);
      if (updated) await audit(row, "failed", { bytes: row.committedOffset, error: reason });
      logger.info({ uploadId: row.id, path: row.path }, "abandoned upload aborted");
    }
    return stale.length;
  }

  return { start, chunk, get, finish, abort, sweepAbandoned, close: streams.close };
}

export type UploadService = ReturnType<typeof createUploadService>;
