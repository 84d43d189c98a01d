// Helpers for the remote-command e2e tests: a technician with a tunnel to a
// fresh agent, stream collection with arrival times, error codes, pid checks.
import { OutputStream, type CommandResult } from "../../gen/guru/api/v1/exec_pb.js";
import type { ApiClients } from "../../lib/api-client.ts";
import type { AgentProcess, TestServer } from "./harness.ts";
import { waitFor } from "./raw-agent.ts";

export interface Tunnel {
  agent: AgentProcess;
  api: ApiClients;
  technicianId: string;
  token: string;
  sessionId: string;
}

let counter = 0;

/** A new technician and a new agent, named after `name` and unique in the run. */
export async function techAndAgent(t: TestServer, name: string, agentOptions?: { allow?: string[]; env?: Record<string, string> }) {
  const suffix = `${process.pid}-${++counter}`;
  const [agent, tech] = await Promise.all([t.startAgent(`${name}-${suffix}`, agentOptions), t.createTech(`tech-${name}-${suffix}`)]);
  return { agent, tech };
}

/** A new technician, a new agent and an open tunnel between them. */
export async function openTunnel(t: TestServer, name: string, agentOptions?: { allow?: string[]; env?: Record<string, string> }): Promise<Tunnel> {
  const { agent, tech } = await techAndAgent(t, name, agentOptions);
  const { sessionId } = await tech.api.sessions.openTunnel({ agentId: agent.agentId });
  return { agent, api: tech.api, technicianId: tech.technicianId, token: tech.token, sessionId };
}

export interface Collected {
  stdout: string;
  stderr: string;
  result: CommandResult | undefined;
  /** ms since the call started, per chunk, and of the result. */
  chunkTimes: number[];
  resultTime: number;
}

export async function collectStream(
  messages: AsyncIterable<{ event: { case: string | undefined; value?: unknown } }>,
  onChunk?: (text: string) => void,
): Promise<Collected> {
  const started = performance.now();
  const out: Collected = { stdout: "", stderr: "", result: undefined, chunkTimes: [], resultTime: 0 };
  for await (const m of messages) {
    if (m.event.case === "output") {
      const chunk = m.event.value as { stream: OutputStream; data: Uint8Array };
      const text = Buffer.from(chunk.data).toString();
      if (chunk.stream === OutputStream.STDERR) out.stderr += text;
      else out.stdout += text;
      out.chunkTimes.push(performance.now() - started);
      onChunk?.(text);
    } else if (m.event.case === "result") {
      out.result = m.event.value as CommandResult;
      out.resultTime = performance.now() - started;
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Zombies count as alive to kill(0) until reaped, so allow a moment for init to reap them. */
export async function waitDead(pids: number[], timeoutMs = 5000): Promise<void> {
  await waitFor(() => pids.every((p) => !isAlive(p)), timeoutMs, `processes ${pids.join(", ")} to die`);
}

export { errorOf } from "./rpc-errors.ts";
