// `guru mcp`: an MCP server on stdio for Claude Code and other MCP clients. A
// client of the Connect API with the technician's token (GURU_URL, GURU_TOKEN
// or --url, --token-file): never of the database. stdout carries only the
// protocol; every log line goes to stderr.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { connect, str } from "../cli/connection.ts";
import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { createGuruApi } from "./api.ts";
import { createJobStore } from "./jobs.ts";
import { describeMcpOptions, loadMcpOptions } from "./options.ts";
import { createGuruMcpServer, createTools } from "./server.ts";
import { createTunnelManager } from "./tunnels.ts";

const usage = `usage: guru mcp [--url URL] [--token-file FILE] [options]

An MCP server on stdio. The server and token come from GURU_URL and GURU_TOKEN
(or --url and --token-file). Options:
`;

export async function mcpCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, ["help"]);
  if (flags.help) {
    process.stderr.write(
      `${usage}${describeMcpOptions()
        .map((l) => `  ${l}`)
        .join("\n")}\n`,
    );
    return 0;
  }
  const options = loadMcpOptions(flags);
  const logger = createLogger({ destination: "stderr", name: "guru-mcp", level: options.logLevel });
  const clients = connect(flags);
  const url = str(flags.url) ?? process.env.GURU_URL ?? "";
  const api = createGuruApi({ clients, url });

  // Which optional tools to offer. An unreachable server must not stop the
  // MCP server from starting: its tools answer with the reason instead.
  const features = await api.features().catch((err: unknown) => {
    logger.warn({ err }, "could not read the server's capabilities; offering the core tools");
    return [] as string[];
  });

  const tunnels = createTunnelManager({ api, idleMs: options.idleMs, logger: logger.child({ part: "tunnels" }) });
  const jobs = createJobStore({
    api,
    tunnels,
    logger: logger.child({ part: "jobs" }),
    bufferBytes: options.jobBufferBytes,
    keepMs: options.jobKeepMs,
    maxJobs: options.maxJobs,
  });
  const tools = createTools({ api, tunnels, jobs, options, logger }, features);
  const server = createGuruMcpServer({ tools, logger });
  const transport = new StdioServerTransport();

  // Stop on stdin's end (the client went away), SIGTERM or SIGINT: cancel
  // running commands, close every tunnel and wait for those calls, then exit.
  const stopped = new Promise<string>((resolve) => {
    process.stdin.once("end", () => resolve("stdin closed"));
    process.stdin.once("close", () => resolve("stdin closed"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
    transport.onclose = () => resolve("transport closed");
  });

  await server.connect(transport);
  logger.info({ url, tools: tools.map((t) => t.name), features }, "guru mcp ready on stdio");

  const why = await stopped;
  logger.info({ why, tunnels: tunnels.active().length }, "guru mcp stopping");
  await jobs.cancelAll();
  await tunnels.closeAll();
  await server.close().catch(() => undefined);
  process.stdin.destroy();
  logger.info("guru mcp stopped");
  logger.flush();
  return 0;
}
