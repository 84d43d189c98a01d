// Remote commands: a technician runs a shell command on the agent of their
// active tunnel. Checks in order (input, session, rate limit), then the agent
// runs it under its own policy and path allowlist. Every command is audited,
// allowed or refused, and failures feed the alert threshold.
//
// Audit outcomes: "refused" when a check said no (ours or the agent's policy,
// allowlist or tunnel check); "failed" when the command ran but did not
// succeed (non-zero exit, timeout, killed) or never got an answer (link lost);
// "allowed" when it exited 0 or the caller canceled it.
import { redactCommandEnv, validateCommandEnv } from "../../lib/command-env.ts";
import { GuruError, toGuruError, type ErrorKind } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { AuditOutcome, CommandAuditInput, CommandCompletion } from "../store/audit.ts";
import type { Store } from "../store/index.ts";
import type { FailureAlerts } from "./alerts.ts";
import { isUuid } from "./ids.ts";
import type { Principal } from "./principal.ts";
import { shellNames, type OutputStreamName, type RemoteCommandOutcome, type RemoteCommands, type ShellName } from "./remote-commands.ts";
import type { SessionService } from "./sessions.ts";
import { tunnelEndedError, type SessionWork } from "./session-work.ts";
import { createCommandTunnels, type CommandTunnel } from "./command-tunnels.ts";

export interface CommandInput {
  sessionId: string;
  /** Instead of sessionId: the agent, in the caller's active tunnel to it or one opened for this command (command-tunnels.ts). */
  agentId?: string;
  command: string;
  /** A ShellName; anything else is refused (and audited) here. */
  shell?: string;
  workingDir?: string;
  /** 0 or undefined: the default; above the maximum: the maximum. */
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface CommandLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  maxOutputBytes: number;
  rateLimit: number;
  rateWindowMs: number;
}

export interface CommandServiceOptions {
  store: Pick<Store, "audit" | "commands" | "sessions">;
  sessions: Pick<SessionService, "requireActive" | "open" | "close" | "list">;
  remote: RemoteCommands;
  alerts: FailureAlerts;
  logger: Logger;
  limits: CommandLimits;
  /** Running commands by tunnel: a tunnel that ends cancels its commands. */
  work: SessionWork;
  /** Counts finished commands by audit outcome (metrics). */
  onAudited?(outcome: AuditOutcome): void;
  /** A command moves its session's last activity only when that is older than this (default: a second). */
  sessionTouchMs?: number;
}

/** How a command ended, and the tunnel session it ran in. */
export type CommandOutcome = RemoteCommandOutcome & { sessionId: string };

export interface CommandIo {
  onOutput(stream: OutputStreamName, data: Uint8Array): Promise<void> | void;
  /** The caller went away or canceled: the agent kills the process tree. */
  signal?: AbortSignal;
}

/** A shell command line longer than this is a mistake, not a command. */
const maxCommandChars = 64 * 1024;

// Agent answers that mean "a check said no", not "it broke".
const refusalKinds = new Set<ErrorKind>(["denied", "invalid", "failed_precondition", "rate_limited"]);
/** How long a command's audit completion is retried while the database is unavailable. */
const completionRetryMs = 5 * 60_000;

/** The env as the audit row keeps it: secret-looking values redacted; null for none. */
function auditedEnv(env: Record<string, string> | undefined): Record<string, string> | null {
  if (env === undefined || env === null || typeof env !== "object") return null;
  const entries = Object.entries(env).slice(0, 1000);
  if (entries.length === 0) return null;
  return redactCommandEnv(Object.fromEntries(entries.map(([name, value]) => [name, typeof value === "string" ? value : String(value)])));
}

const invalidField = (field: string, message: string) => new GuruError("invalid", message, { metadata: { field } });

export function createCommandService(options: CommandServiceOptions) {
  const { store, sessions, remote, alerts, logger, limits } = options;
  const tunnels = createCommandTunnels(sessions, store.sessions, logger);

  function validate(input: CommandInput): { shell: ShellName | undefined; timeoutMs: number; env: Record<string, string> } {
    if (typeof input.command !== "string" || input.command.trim() === "") throw invalidField("command", "command must not be empty");
    if (input.command.length > maxCommandChars) throw invalidField("command", `command is longer than ${maxCommandChars} characters`);
    if (input.command.includes("\0")) throw invalidField("command", "command must not contain NUL characters");
    if (input.agentId && input.sessionId) throw invalidField("agentId", "set session_id or agent_id, not both");
    const shell = input.shell as ShellName | undefined;
    if (shell !== undefined && !shellNames.includes(shell)) {
      throw new GuruError("invalid", `shell must be one of ${shellNames.join(", ")}`, { metadata: { field: "shell" }, details: { shell: input.shell } });
    }
    if ((input.workingDir ?? "").includes("\0")) throw invalidField("workingDir", "workingDir must not contain NUL characters");
    const requested = input.timeoutMs ?? 0;
    if (!Number.isInteger(requested) || requested < 0) throw invalidField("timeoutMs", "timeoutMs must be a non-negative integer");
    const timeoutMs = Math.min(requested === 0 ? limits.defaultTimeoutMs : requested, limits.maxTimeoutMs);
    // Which names are allowed is the agent's policy; the shape is checked here too,
    // so a malformed env is refused (and audited) before anything is dispatched.
    const env = input.env ?? {};
    validateCommandEnv(env);
    return { shell, timeoutMs, env };
  }

  async function audited(outcome: AuditOutcome, failure: { technicianId: string; agentId?: string }): Promise<void> {
    options.onAudited?.(outcome);
    if (outcome !== "allowed") await alerts.afterFailure(failure);
  }

  /**
   * The session, rate-limit and audit part of starting a command, in one
   * database round trip. Started: the audit row exists before the command is
   * dispatched. Throws when the session is not the caller's active one.
   */
  async function begin(principal: Principal, input: CommandInput, row: Omit<CommandAuditInput, "outcome">) {
    if (isUuid(input.sessionId)) {
      const began = await store.commands.begin({
        sessionId: input.sessionId,
        technicianId: principal.technicianId,
        rateLimit: { limit: limits.rateLimit, windowMs: limits.rateWindowMs },
        shell: row.shell ?? null,
        workingDir: row.workingDir ?? null,
        command: row.command,
        env: row.env ?? null,
        touchAfterMs: options.sessionTouchMs ?? 1000,
      });
      if (began.status !== "no_session") return began;
    }
    // Not the caller's active session: the session service says exactly why.
    await sessions.requireActive(principal, input.sessionId);
    throw new GuruError("failed_precondition", `session ${input.sessionId} is not active; open a new tunnel`, {
      reason: "SESSION_NOT_ACTIVE",
      metadata: { sessionId: input.sessionId },
    });
  }

  function rateLimited(retryAfterMs: number): GuruError {
    return new GuruError(
      "rate_limited",
      `rate limit: at most ${limits.rateLimit} commands per ${limits.rateWindowMs / 1000} s per technician per agent; retry in ${(retryAfterMs / 1000).toFixed(1)} s (${retryAfterMs} ms)`,
      { metadata: { retryAfterMs, limit: limits.rateLimit, windowMs: limits.rateWindowMs } },
    );
  }

  /**
   * Runs the command; resolves with how it ended and the tunnel it ran in, or
   * throws the refusal or failure (audited either way).
   */
  async function run(principal: Principal, input: CommandInput, io: CommandIo): Promise<CommandOutcome> {
    if (!input.agentId || input.sessionId) return { ...(await runInSession(principal, input, io)), sessionId: input.sessionId };
    let tunnel: CommandTunnel;
    try {
      validate(input);
      tunnel = await tunnels.acquire(principal, input.agentId);
    } catch (err) {
      // The tunnel's own refusal is audited as a tunnel event too; this row is the command's.
      throw await refused(auditRow(principal, input), isUuid(input.agentId) ? input.agentId : undefined, err);
    }
    try {
      return { ...(await runInSession(principal, { ...input, sessionId: tunnel.sessionId, agentId: undefined }, io)), sessionId: tunnel.sessionId };
    } finally {
      await tunnel.release();
    }
  }

  /** Who ran what, where: the audit row of a command, before its outcome. */
  function auditRow(principal: Principal, input: CommandInput) {
    return {
      technicianId: principal.technicianId,
      sessionId: isUuid(input.sessionId) ? input.sessionId : null,
      command: typeof input.command === "string" ? input.command : "",
      shell: input.shell ?? null,
      workingDir: input.workingDir || null,
      env: auditedEnv(input.env),
    };
  }

  async function refused(row: ReturnType<typeof auditRow>, agentId: string | undefined, err: unknown): Promise<GuruError> {
    const error = toGuruError(err);
    const technicianId = row.technicianId;
    await store.audit.command({ ...row, agentId: agentId ?? null, outcome: "refused", refusalReason: error.message });
    logger.info({ technicianId, agentId, sessionId: row.sessionId, kind: error.kind, reason: error.message }, "command refused");
    await audited("refused", { technicianId, agentId });
    return error;
  }

  async function runInSession(principal: Principal, input: CommandInput, io: CommandIo): Promise<RemoteCommandOutcome> {
    const technicianId = principal.technicianId;
    const row = auditRow(principal, input);
    let agentId: string | undefined;
    let checked: ReturnType<typeof validate>;
    let auditId: number;
    try {
      checked = validate(input);
      const began = await begin(principal, input, row);
      agentId = began.agentId;
      if (began.status === "rate_limited") throw rateLimited(began.retryAfterMs);
      auditId = began.auditId;
    } catch (err) {
      throw await refused(row, agentId, err);
    }

    let channelId: number | undefined;
    const started = Date.now();
    const inTunnel = options.work.signalFor({ sessionId: input.sessionId, technicianId, tokenId: principal.tokenId }, io.signal);
    try {
      const outcome = await remote.run(
        agentId,
        {
          sessionId: input.sessionId,
          technicianId,
          command: input.command,
          shell: checked.shell,
          workingDir: input.workingDir ?? "",
          timeoutMs: checked.timeoutMs,
          env: checked.env,
          maxOutputBytes: limits.maxOutputBytes,
        },
        { onOutput: io.onOutput, signal: inTunnel.signal, onDispatched: (id) => (channelId = id) },
      );
      const ended = tunnelEndedError(inTunnel.signal);
      const outcomeKind: AuditOutcome = (outcome.reason === "exited" && outcome.exitCode === 0) || outcome.reason === "canceled" ? "allowed" : "failed";
      // Write-behind: the row (who ran what, where) was written before the
      // command was dispatched; its result is filled in while the caller
      // already has the answer. drain() waits for these writes.
      afterAnswer(
        auditId,
        outcomeKind,
        { technicianId, agentId },
        {
          outcome: outcomeKind,
          channelId,
          exitCode: outcome.exitCode,
          exitReason: outcome.reason,
          signal: outcome.signal || null,
          durationMs: outcome.durationMs,
          stdoutBytes: outcome.stdoutBytes,
          stderrBytes: outcome.stderrBytes,
          truncated: outcome.truncated,
          ...(ended && outcome.reason === "canceled" ? { refusalReason: ended.message } : {}),
        },
      );
      logger.debug({ technicianId, agentId, sessionId: input.sessionId, ...outcome }, "command finished");
      return outcome;
    } catch (err) {
      const error = toGuruError(err);
      const outcomeKind: AuditOutcome = refusalKinds.has(error.kind) ? "refused" : "failed";
      await store.audit.completeCommand(auditId, { outcome: outcomeKind, channelId, refusalReason: error.message, durationMs: Date.now() - started });
      logger.info({ technicianId, agentId, sessionId: input.sessionId, kind: error.kind, reason: error.message }, `command ${outcomeKind}`);
      await audited(outcomeKind, { technicianId, agentId });
      throw error;
    } finally {
      inTunnel.release();
    }
  }

  const completing = new Set<Promise<void>>();

  /**
   * The caller already has its answer, so a database outage must not leave the
   * row without its result: the write is retried every second for up to
   * completionRetryMs while the database is unavailable.
   */
  async function whileDatabaseUnavailable<T>(write: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + completionRetryMs;
    for (;;) {
      try {
        return await write();
      } catch (err) {
        if (toGuruError(err).kind !== "unavailable" || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  /** Completes the audit row, then counts the outcome (failures feed the alert, which reads the rows). */
  function afterAnswer(auditId: number, outcome: AuditOutcome, failure: { technicianId: string; agentId?: string }, completion: CommandCompletion): void {
    // A macrotask later: the answer is on its way before the write starts
    // (the embedded database runs on this thread).
    const write = new Promise((resolve) => setImmediate(resolve))
      .then(() => whileDatabaseUnavailable(() => store.audit.completeCommand(auditId, { ...completion, outcome })))
      .then(() => audited(outcome, failure))
      .catch((err: unknown) => logger.error({ err, auditId, ...failure }, "could not complete a command's audit row"))
      .finally(() => completing.delete(write));
    completing.add(write);
  }

  /** Resolves once every audit write for commands that already answered is done (shutdown, tests). */
  async function drain(): Promise<void> {
    while (completing.size > 0) await Promise.all(completing);
  }

  return { run, drain };
}

export type CommandService = ReturnType<typeof createCommandService>;
