// `guru mcp` as a child process behind the SDK's Client over stdio: how the
// e2e tests and the benchmark drive it, exactly as Claude Code would. In the
// product only mcp/ imports the SDK; tests may import its Client from here.
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

export type { CallToolResult };

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

export interface GuruMcpChild {
  client: Client;
  /** The child's pid (for signals in tests). */
  pid: number;
  /** Everything the child wrote to stderr (its logs). */
  stderr(): string;
  /** Resolves with the child's exit once it has gone. */
  exited: Promise<void>;
  /** Closes stdin (as a client that goes away does) and waits for the child to exit. */
  close(): Promise<void>;
}

export async function startGuruMcp(options: { url: string; token: string; env?: Record<string, string>; args?: string[] }): Promise<GuruMcpChild> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [guruBin, "mcp", ...(options.args ?? [])],
    env: { GURU_URL: options.url, GURU_TOKEN: options.token, GURU_LOG_LEVEL: "info", ...options.env },
    stderr: "pipe",
  });
  let logs = "";
  transport.stderr?.on("data", (d: Buffer) => (logs += d.toString()));
  let resolveExit!: () => void;
  const exited = new Promise<void>((resolve) => (resolveExit = resolve));
  const client = new Client({ name: "guru-e2e", version: "1.0.0" });
  client.onclose = () => resolveExit();
  try {
    await client.connect(transport);
  } catch (err) {
    throw new Error(`guru mcp did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return {
    client,
    pid: transport.pid ?? -1,
    stderr: () => logs,
    exited,
    async close() {
      await client.close();
      await exited;
    },
  };
}

/** The first text block of a tool result. */
export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first?.type === "text" ? first.text : "";
}
