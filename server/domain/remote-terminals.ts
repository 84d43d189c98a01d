// The domain's port for an interactive terminal on an agent, in its own types.
// server/link/remote-terminals.ts implements it over the AgentRouter: one
// channel per terminal, keystrokes and output as channel data under the
// channel's credit, so a slow reader slows the program, never memory.
import type { ExitReason, ShellName } from "./remote-commands.ts";

export interface RemoteTerminalSpec {
  terminalId: string;
  sessionId: string;
  technicianId: string;
  /** Empty: an interactive shell. */
  command: string;
  shell?: ShellName;
  workingDir: string;
  columns: number;
  rows: number;
  env: Record<string, string>;
  term: string;
}

export interface RemoteTerminalOutcome {
  exitCode: number;
  signal: string;
  durationMs: number;
  reason: ExitReason;
  inputBytes: number;
  outputBytes: number;
}

export type RemoteTerminalEvent = { type: "started"; pid: number } | { type: "output"; data: Uint8Array } | { type: "exit"; outcome: RemoteTerminalOutcome };

export interface RemoteTerminal {
  readonly channelId: number;
  /**
   * Started (the agent runs it), output, then one exit; throws the agent's refusal or agent_offline. The
   * next event is not taken (and the agent gets no more credit) until the
   * consumer asks for it.
   */
  events(): AsyncIterable<RemoteTerminalEvent>;
  /** Keystrokes; resolves once within the agent's credit. */
  write(data: Uint8Array): Promise<void>;
  resize(columns: number, rows: number): void;
  /** The agent kills the terminal's process tree and answers with reason "canceled". */
  close(reason: string): void;
}

export interface RemoteTerminals {
  /** Throws agent_offline when the agent has no link. */
  open(agentId: string, spec: RemoteTerminalSpec): RemoteTerminal;
}
