// The MCP server: our tool definitions registered on the SDK's McpServer.
// This file and main.ts are the only product files importing the SDK. Every tool
// result goes through here: structured data plus text on success, and errors
// mapped once (mcp/errors.ts) to `isError` results with a next step.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../lib/logging.ts";
import { version } from "../lib/version.ts";
import { toToolError } from "./errors.ts";
import type { AnyTool, ToolContext } from "./tool.ts";
import { createCancelCommandTool } from "./tools/cancel-command.ts";
import { createControlServiceTool } from "./tools/control-service.ts";
import type { ToolDeps } from "./tools/context.ts";
import { createGetCommandOutputTool } from "./tools/get-command-output.ts";
import { createGetServicesTool } from "./tools/get-services.ts";
import { createListAgentsTool } from "./tools/list-agents.ts";
import { createListDirectoryTool } from "./tools/list-directory.ts";
import { createReadFileTool } from "./tools/read-file.ts";
import { createReadRegistryTool } from "./tools/read-registry.ts";
import { createRunCommandTool } from "./tools/run-command.ts";
import { createStartCommandTool } from "./tools/start-command.ts";
import { createWriteFileTool } from "./tools/write-file.ts";
import { createWriteRegistryTool } from "./tools/write-registry.ts";

const instructions =
  "GuruTunnel gives you managed endpoints (agents) of an MSP. Start with list_agents to find the agent; then run_command, read_file, " +
  "list_directory and write_file act on it, as the technician whose token this server uses: every call is authorised, rate-limited and audited. " +
  "Long commands continue as jobs (start_command, get_command_output, cancel_command). Large output is paged by offset: follow the notes. " +
  "Services: get_services, then control_service (dry run first). Windows registry: read_registry, write_registry (dry run first).";

/**
 * The tools. Services and registry tools are always offered: capabilities
 * are per agent, and a call on an agent without one says which agents have it.
 */
export function createTools(deps: ToolDeps, features: readonly string[]): AnyTool[] {
  const tools: AnyTool[] = [
    createListAgentsTool(deps),
    createRunCommandTool(deps),
    createStartCommandTool(deps),
    createGetCommandOutputTool(deps),
    createCancelCommandTool(deps),
    createReadFileTool(deps),
    createWriteFileTool(deps),
    createListDirectoryTool(deps),
    createGetServicesTool(deps),
    createControlServiceTool(deps),
    createReadRegistryTool(deps),
    createWriteRegistryTool(deps),
  ];
  // An older server answers them with "the server does not offer this yet".
  if (features.length > 0 && !features.includes("services"))
    deps.logger.info({ features }, "the server does not list services; those tools will say so when called");
  return tools;
}

export function createGuruMcpServer(deps: { tools: AnyTool[]; logger: Logger }): McpServer {
  const server = new McpServer({ name: "guru", title: "GuruTunnel", version }, { instructions, capabilities: { tools: {}, logging: {} } });
  for (const tool of deps.tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.inputSchema,
        outputSchema: tool.outputSchema,
        annotations: { title: tool.title, ...tool.annotations },
      },
      async (args: Record<string, unknown>, extra: RequestHandlerExtra<ServerRequest, ServerNotification>) => {
        const token = extra._meta?.progressToken;
        let last = -Infinity;
        const ctx: ToolContext = {
          signal: extra.signal,
          progress(progress, total, message) {
            if (token === undefined || progress <= last || extra.signal.aborted) return;
            last = progress;
            extra
              .sendNotification({
                method: "notifications/progress",
                params: { progressToken: token, progress, ...(total === undefined ? {} : { total }), message },
              })
              .catch((err: unknown) => deps.logger.debug({ err }, "progress notification not sent"));
          },
        };
        const started = performance.now();
        try {
          const out = await tool.run(args, ctx);
          deps.logger.debug({ tool: tool.name, ms: Math.round(performance.now() - started) }, "tool call");
          return { content: [{ type: "text" as const, text: out.text }], structuredContent: out.structured };
        } catch (err) {
          return toToolError(err, deps.logger, tool.name);
        }
      },
    );
  }
  return server;
}
