// list_agents: which endpoints this technician can reach, and which are online.
import { z } from "zod";
import { defineTool } from "../tool.ts";
import type { ToolDeps } from "./context.ts";

const agentShape = z.object({
  id: z.string(),
  name: z.string(),
  online: z.boolean(),
  lastSeenAt: z.string().nullable().describe("ISO time the agent was last connected; null if never"),
  os: z.string().describe("linux, darwin, win32, …"),
  osRelease: z.string(),
  hostname: z.string(),
  arch: z.string(),
});

export function createListAgentsTool(deps: Pick<ToolDeps, "api">) {
  return defineTool({
    name: "list_agents",
    title: "List agents",
    description:
      "Lists the managed endpoints (agents) enrolled on the GuruTunnel server: name, id, operating system, whether it is online now, and when it was last seen. " +
      "Use it first to find the agent a task is about; the other tools take the agent's name or id. Only online agents can run commands or serve files. " +
      "Filter with `name` (case-insensitive substring) and `onlineOnly`.",
    inputSchema: {
      name: z.string().optional().describe("only agents whose name contains this text, ignoring case"),
      onlineOnly: z.boolean().optional().describe("only agents that are online now"),
    },
    outputSchema: { agents: z.array(agentShape), count: z.number().int() },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args) {
      const all = await deps.api.listAgents(args.name ?? "");
      const agents = all
        .filter((a) => !a.revoked && (!args.onlineOnly || a.online))
        .map((a) => ({
          id: a.id,
          name: a.name,
          online: a.online,
          lastSeenAt: a.lastSeenAt?.toISOString() ?? null,
          os: a.os,
          osRelease: a.osRelease,
          hostname: a.hostname,
          arch: a.arch,
        }));
      const lines = agents.map(
        (a) =>
          `${a.name}  ${a.id}  ${a.online ? "online" : "offline"}  ${a.os || "-"} ${a.arch || ""}  ${a.hostname || "-"}  last seen ${a.lastSeenAt ?? "never"}`,
      );
      const text =
        agents.length === 0
          ? args.name
            ? `no agents match "${args.name}"; call list_agents without a filter to see all`
            : "no agents are enrolled; an admin enrols one with 'guru admin enroll NAME'"
          : `${agents.length} agent(s):\n${lines.join("\n")}`;
      return { structured: { agents, count: agents.length }, text };
    },
  });
}
