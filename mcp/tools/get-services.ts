// get_services: the services on an agent with typed state and start mode.
import { z } from "zod";
import { defineTool } from "../tool.ts";
import { agentParam, type ToolDeps } from "./context.ts";
import { capLines, withSystemAgent } from "./system-capability.ts";

export const serviceSchema = z.object({
  name: z.string(),
  displayName: z.string(),
  state: z.enum(["running", "stopped", "failed", "starting", "stopping", "paused", "unknown"]),
  startMode: z.enum(["automatic", "manual", "disabled", "system", "unknown"]),
  pid: z.number().int().nullable(),
  description: z.string(),
});

export function createGetServicesTool(deps: ToolDeps) {
  return defineTool({
    name: "get_services",
    title: "List services on an agent",
    description:
      "Lists the services (daemons) of a managed endpoint with their state (running, stopped, failed, starting, stopping, paused), start mode " +
      "(automatic, manual, disabled) and pid: systemd or SysV scripts on Linux, the service control manager on Windows, launchd on macOS. " +
      "Filter by a part of the name or display name. Needs the agent's services capability (list_agents shows it); then control_service acts on one.",
    inputSchema: {
      agent: agentParam,
      filter: z.string().optional().describe("only services whose name or display name contains this text, ignoring case"),
    },
    outputSchema: {
      agent: z.string(),
      serviceManager: z.string().describe("systemd, sysv, scm or launchd"),
      services: z.array(serviceSchema),
      note: z.string().optional(),
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args, ctx) {
      const r = await withSystemAgent(deps, args.agent, "services", (sessionId) => deps.api.system.listServices(sessionId, args.filter ?? "", ctx.signal));
      const services = r.services.map((s) => serviceSchema.parse(s));
      const width = Math.max(4, ...services.map((s) => s.name.length));
      const page = capLines(
        services.map((s) => `${s.name.padEnd(width)}  ${s.state.padEnd(8)}  ${s.startMode.padEnd(9)}  ${String(s.pid ?? "-").padStart(7)}  ${s.displayName}`),
        deps.options.maxOutputBytes,
      );
      const note =
        page.omitted > 0
          ? `${page.omitted} services are left out of the text (over the output cap); they are in the structured result, or narrow the filter.`
          : undefined;
      const head = `${services.length} service${services.length === 1 ? "" : "s"} on ${args.agent} (${r.serviceManager})${args.filter ? ` matching "${args.filter}"` : ""}`;
      return {
        structured: { agent: args.agent, serviceManager: r.serviceManager, services, ...(note ? { note } : {}) },
        text: `${head}\n${page.text}${note ? `\nNote: ${note}` : ""}`,
      };
    },
  });
}
