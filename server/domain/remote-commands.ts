// The domain's port for running one command on an agent, in its own types.
// server/link/remote-commands.ts implements it over the AgentRouter: one
// channel per command, output handed over as it arrives under the channel's
// flow control, so a slow consumer slows the command instead of growing memory.

import type { ExitReasonName, OutputStreamName, ShellName } from "../../lib/wire/shells.ts";

export { shellNames, type OutputStreamName, type ShellName } from "../../lib/wire/shells.ts";
export type ExitReason = ExitReasonName;

export interface RemoteCommandSpec {
  sessionId: string;
  technicianId: string;
  command: string;
  /** Undefined: the agent's default (sh on POSIX, powershell on Windows). */
  shell?: ShellName;
  /** Empty: the agent's first allowed path. */
  workingDir: string;
  timeoutMs: number;
  env: Record<string, string>;
  /** Per stream; past it the agent only counts. */
  maxOutputBytes: number;
}

export interface RemoteCommandOutcome {
  exitCode: number;
  signal: string;
  durationMs: number;
  reason: ExitReason;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
}

export interface RemoteCommandIo {
  /**
   * One chunk of output. The next chunk is not read (and the agent gets no
   * more credit) until the returned promise settles.
   */
  onOutput(stream: OutputStreamName, data: Uint8Array): Promise<void> | void;
  /** Abort = cancel: the agent kills the process tree and answers with reason "canceled". */
  signal?: AbortSignal;
  /** Called once the command is dispatched, with the channel it runs on (for the audit). */
  onDispatched?(channelId: number): void;
}

export interface RemoteCommands {
  /**
   * Runs the command on the agent and resolves with how it ended. Throws the
   * agent's refusal (denied, invalid, ...) or agent_offline when the link is
   * gone; a cancel still resolves (reason "canceled") once the agent answered.
   */
  run(agentId: string, spec: RemoteCommandSpec, io: RemoteCommandIo): Promise<RemoteCommandOutcome>;
}
