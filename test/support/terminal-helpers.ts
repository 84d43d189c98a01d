// Helpers for terminal e2e tests: an agent whose local policy enables
// terminals, and a terminal socket client that collects output.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openTerminalSocket, type TerminalConnection } from "../../lib/terminal-client.ts";
import type { TestServer } from "./harness.ts";

/** Agent env whose policy file enables terminals (agents keep them off by default). */
export async function terminalAgentEnv(t: TestServer, extra: Record<string, unknown> = {}): Promise<Record<string, string>> {
  const file = join(t.tempDir, `policy-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ capabilities: { terminal: true }, ...extra }));
  return { GURU_POLICY: file };
}

export interface ShellClient {
  conn: TerminalConnection;
  /** Output so far, as text. */
  text(): string;
  bytes(): Buffer;
  /** Waits until the output matches. */
  until(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export async function openShell(
  url: string,
  open: Parameters<typeof openTerminalSocket>[0]["open"],
  options: { ca?: Buffer; origin?: string } = {},
): Promise<ShellClient> {
  const chunks: Buffer[] = [];
  let waiters: (() => void)[] = [];
  const conn = await openTerminalSocket({
    url,
    open,
    ca: options.ca,
    origin: options.origin,
    onOutput(data) {
      chunks.push(Buffer.from(data));
      const w = waiters;
      waiters = [];
      for (const wake of w) wake();
    },
  });
  const bytes = () => Buffer.concat(chunks);
  return {
    conn,
    bytes,
    text: () => bytes().toString("utf8"),
    async until(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = bytes().toString("utf8").match(pattern);
        if (match) return match;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`terminal output never matched ${pattern}: ${JSON.stringify(bytes().toString("utf8").slice(-2000))}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}
