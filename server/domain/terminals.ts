// Interactive terminals: a technician opens a pseudo-terminal on the agent of
// their active tunnel. Checks in order (input, session, rate limit), then the
// agent starts it under its own policy. Every terminal is audited, refused or
// not, and every one that starts is recorded (asciicast v2) under its id,
// which its audit row names as the recording.
//
// Audit outcomes: "refused" when a check said no (ours or the agent's);
// "exited" once it ended with an answer from the agent (whatever the exit
// code); "failed" when it never got one (link lost, no start in time).
import { randomUUID } from "node:crypto";
import { GuruError, toGuruError, type ErrorKind } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { createRecorder, type Recorder } from "../recordings/recorder.ts";
import type { Store } from "../store/index.ts";
import { isUuid } from "./ids.ts";
import type { Principal } from "./principal.ts";
import { shellNames, type ShellName } from "./remote-commands.ts";
import type { RemoteTerminal, RemoteTerminalEvent, RemoteTerminalOutcome, RemoteTerminals } from "./remote-terminals.ts";
import type { SessionService } from "./sessions.ts";

export interface TerminalInput {
  sessionId: string;
  command?: string;
  shell?: string;
  workingDir?: string;
  /** 0 or undefined: 80 columns, 24 rows. */
  columns?: number;
  rows?: number;
  env?: Record<string, string>;
  term?: string;
}

export interface TerminalLimits {
  /** Terminals a technician may open per agent in the rate window. */
  rateLimit: number;
  rateWindowMs: number;
  /** Output stored per recording; input and resizes are always stored. */
  maxRecordingOutputBytes: number;
  /** How long the agent has to start the terminal. */
  startTimeoutMs: number;
}

export interface TerminalHandle {
  readonly id: string;
  readonly sessionId: string;
  readonly agentId: string;
  /** Output, then one exit (after the recording and audit row are complete). Iterate once. */
  events(): AsyncIterable<Exclude<RemoteTerminalEvent, { type: "started" }>>;
  write(data: Uint8Array): Promise<void>;
  /** Throws invalid for a size out of range (the terminal goes on). */
  resize(columns: number, rows: number): void;
  close(reason: string): void;
}

export interface TerminalServiceOptions {
  store: Pick<Store, "terminals" | "rateLimits">;
  sessions: Pick<SessionService, "requireActive">;
  remote: RemoteTerminals;
  logger: Logger;
  limits: TerminalLimits;
}

const maxTerminalSize = 10_000;
const maxCommandChars = 64 * 1024;
const maxEnvEntries = 256;
const sessionTouchIntervalMs = 60_000;
const refusalKinds = new Set<ErrorKind>(["denied", "invalid", "failed_precondition", "rate_limited"]);

function checkSize(columns: number, rows: number): void {
  for (const [name, value] of [
    ["columns", columns],
    ["rows", rows],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > maxTerminalSize) {
      throw new GuruError("invalid", `${name} must be an integer from 1 to ${maxTerminalSize}`, { details: { [name]: value } });
    }
  }
}

function auditableSize(value: number): number | null {
  return Number.isInteger(value) && value >= 0 && value <= 0x7fff_ffff ? value : null;
}

function validate(input: TerminalInput) {
  const command = input.command ?? "";
  if (command.length > maxCommandChars) throw new GuruError("invalid", `command is longer than ${maxCommandChars} characters`);
  if (command.includes("\0") || (input.workingDir ?? "").includes("\0"))
    throw new GuruError("invalid", "command and workingDir must not contain NUL characters");
  const shell = input.shell as ShellName | undefined;
  if (shell !== undefined && !shellNames.includes(shell))
    throw new GuruError("invalid", `shell must be one of ${shellNames.join(", ")}`, { details: { shell } });
  const columns = input.columns || 80;
  const rows = input.rows || 24;
  checkSize(columns, rows);
  const term = input.term || "xterm-256color";
  if (!/^[A-Za-z0-9._+-]{1,64}$/.test(term)) throw new GuruError("invalid", "term must be a terminal type name such as xterm-256color");
  const env = input.env ?? {};
  if (Object.keys(env).length > maxEnvEntries) throw new GuruError("invalid", `env has more than ${maxEnvEntries} entries`);
  for (const [key, value] of Object.entries(env)) {
    if (key === "" || key.includes("=") || key.includes("\0") || value.includes("\0")) {
      throw new GuruError("invalid", `env entry "${key}" needs a name without "=" and no NUL characters`, { details: { key } });
    }
  }
  return { command, shell, columns, rows, term, env };
}

export function createTerminalService(options: TerminalServiceOptions) {
  const { store, sessions, remote, logger, limits } = options;
  const finishing = new Set<Promise<void>>();

  async function open(principal: Principal, input: TerminalInput): Promise<TerminalHandle> {
    const id = randomUUID();
    const technicianId = principal.technicianId;
    const row = {
      id,
      technicianId,
      sessionId: typeof input.sessionId === "string" && isUuid(input.sessionId) ? input.sessionId : null,
      shell: input.shell ?? null,
      command: input.command || null,
      workingDir: input.workingDir || null,
      // What was asked, when it fits the audit's columns; refused sizes show in the reason.
      columns: auditableSize(input.columns || 80),
      rows: auditableSize(input.rows || 24),
    };
    let agentId: string | null = null;
    let checked: ReturnType<typeof validate>;
    try {
      checked = validate(input);
      const session = await sessions.requireActive(principal, input.sessionId);
      agentId = session.agentId;
      const hit = await store.rateLimits.hit(`terminal:${technicianId}:${agentId}`, { limit: limits.rateLimit, windowMs: limits.rateWindowMs });
      if (!hit.allowed) {
        throw new GuruError(
          "rate_limited",
          `rate limit: at most ${limits.rateLimit} terminals per ${limits.rateWindowMs / 1000} s per technician per agent; retry in ${(hit.retryAfterMs / 1000).toFixed(1)} s`,
          {
            details: { retryAfterMs: hit.retryAfterMs },
          },
        );
      }
    } catch (err) {
      const error = toGuruError(err);
      await store.terminals.insert({ ...row, agentId, outcome: "refused", refusalReason: error.message });
      logger.info({ technicianId, agentId, sessionId: row.sessionId, kind: error.kind, reason: error.message }, "terminal refused");
      throw error;
    }

    await store.terminals.insert({ ...row, agentId, outcome: "running", recordingId: id });
    const started = Date.now();
    let terminal: RemoteTerminal;
    let events: AsyncIterator<RemoteTerminalEvent>;
    try {
      terminal = remote.open(agentId, {
        terminalId: id,
        sessionId: input.sessionId,
        technicianId,
        command: checked.command,
        shell: checked.shell,
        workingDir: input.workingDir ?? "",
        columns: checked.columns,
        rows: checked.rows,
        env: checked.env,
        term: checked.term,
      });
      events = terminal.events()[Symbol.asyncIterator]();
      const first = await firstEvent(events, terminal, limits.startTimeoutMs);
      if (first.type !== "started") throw new GuruError("internal", `the agent sent ${first.type} before the terminal started`);
    } catch (err) {
      const error = toGuruError(err);
      const outcome = refusalKinds.has(error.kind) ? "refused" : "failed";
      await store.terminals.complete(id, {
        outcome,
        channelId: null,
        exitCode: null,
        exitReason: null,
        signal: null,
        durationMs: Date.now() - started,
        inputBytes: 0,
        outputBytes: 0,
        refusalReason: error.message,
        recordingTruncated: false,
      });
      logger.info({ technicianId, agentId, terminalId: id, kind: error.kind, reason: error.message }, `terminal ${outcome}`);
      throw error;
    }

    const recorder = createRecorder({
      terminals: store.terminals,
      recordingId: id,
      columns: checked.columns,
      rows: checked.rows,
      env: { TERM: checked.term, SHELL: checked.shell ?? "" },
      logger: logger.child({ terminalId: id }),
      maxOutputBytes: limits.maxRecordingOutputBytes,
    });
    logger.info({ technicianId, agentId, sessionId: input.sessionId, terminalId: id }, "terminal started");
    const finish = (outcome: RemoteTerminalOutcome | undefined, error: GuruError | undefined) =>
      track(async () => {
        const { truncated } = await recorder.close();
        await store.terminals.complete(id, {
          outcome: outcome ? "exited" : "failed",
          channelId: terminal.channelId,
          exitCode: outcome?.exitCode ?? null,
          exitReason: outcome?.reason ?? null,
          signal: outcome?.signal || null,
          durationMs: outcome?.durationMs ?? Date.now() - started,
          inputBytes: outcome?.inputBytes ?? 0,
          outputBytes: outcome?.outputBytes ?? 0,
          refusalReason: error?.message ?? null,
          recordingTruncated: truncated,
        });
        logger.info({ terminalId: id, ...outcome, error: error?.message }, "terminal ended");
      });
    // Typing counts as activity: a tunnel in use by a terminal must not expire as idle.
    let touchedAt = Date.now();
    const touch = () => {
      if (Date.now() - touchedAt < sessionTouchIntervalMs) return;
      touchedAt = Date.now();
      sessions
        .requireActive(principal, input.sessionId)
        .catch((err: unknown) => logger.debug({ err, terminalId: id }, "terminal activity not recorded on its session"));
    };
    return handle(id, input.sessionId, agentId, terminal, events, recorder, finish, touch);
  }

  function handle(
    id: string,
    sessionId: string,
    agentId: string,
    terminal: RemoteTerminal,
    events: AsyncIterator<RemoteTerminalEvent>,
    recorder: Recorder,
    finish: (outcome: RemoteTerminalOutcome | undefined, error: GuruError | undefined) => Promise<void>,
    touch: () => void,
  ): TerminalHandle {
    let ended = false;
    async function* run(): AsyncGenerator<Exclude<RemoteTerminalEvent, { type: "started" }>> {
      try {
        for (;;) {
          const next = await events.next();
          if (next.done) throw new GuruError("internal", "the terminal ended without an exit");
          const event = next.value;
          if (event.type === "output") {
            await recorder.output(event.data);
            yield event;
          } else if (event.type === "exit") {
            ended = true;
            await finish(event.outcome, undefined);
            yield event;
            return;
          }
        }
      } catch (err) {
        if (!ended) {
          ended = true;
          await finish(undefined, toGuruError(err));
        }
        throw err;
      } finally {
        if (!ended) {
          // The consumer went away: end the terminal and keep reading for the agent's answer, for the audit.
          ended = true;
          terminal.close("the client went away");
          void track(async () => {
            let outcome: RemoteTerminalOutcome | undefined;
            let error: GuruError | undefined;
            try {
              for (let next = await events.next(); !next.done; next = await events.next()) {
                if (next.value.type === "output") await recorder.output(next.value.data);
                else if (next.value.type === "exit") outcome = next.value.outcome;
              }
            } catch (err) {
              error = toGuruError(err);
            }
            await finish(outcome, error);
          });
        }
      }
    }
    return {
      id,
      sessionId,
      agentId,
      events: run,
      write(data) {
        touch();
        recorder.input(data);
        return terminal.write(data);
      },
      resize(columns, rows) {
        checkSize(columns, rows);
        recorder.resize(columns, rows);
        terminal.resize(columns, rows);
      },
      close(reason) {
        terminal.close(reason);
      },
    };
  }

  function track(work: () => Promise<void>): Promise<void> {
    const done = work()
      .catch((err: unknown) => logger.error({ err }, "could not complete a terminal's audit row"))
      .finally(() => finishing.delete(done));
    finishing.add(done);
    return done;
  }

  /** Resolves once every ended terminal's recording and audit row are written (shutdown, tests). */
  async function drain(): Promise<void> {
    while (finishing.size > 0) await Promise.all(finishing);
  }

  return { open, drain };
}

export type TerminalService = ReturnType<typeof createTerminalService>;

async function firstEvent(events: AsyncIterator<RemoteTerminalEvent>, terminal: RemoteTerminal, timeoutMs: number): Promise<RemoteTerminalEvent> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      terminal.close("the agent did not start the terminal in time");
      reject(new GuruError("timeout", `the agent did not start the terminal within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const next = await Promise.race([events.next(), timeout]);
    if (next.done) throw new GuruError("internal", "the terminal ended before it started");
    return next.value;
  } finally {
    clearTimeout(timer);
  }
}
