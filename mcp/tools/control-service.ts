// control_service: start, stop, restart, enable or disable one service.
import { z } from "zod";
import { serviceActions } from "../../lib/system-types.ts";
import { defineTool } from "../tool.ts";
import { agentParam, type ToolDeps } from "./context.ts";
import { serviceSchema } from "./get-services.ts";
import { withSystemAgent } from "./system-capability.ts";

export function createControlServiceTool(deps: ToolDeps) {
  return defineTool({
    name: "control_service",
    title: "Start, stop, restart, enable or disable a service",
    description:
      "Changes one service on a managed endpoint: start, stop, restart (running now) or enable, disable (at boot). Call it with dryRun: true first: " +
      "the answer shows the state before and the state the action would lead to, and nothing changes. Without dryRun the agent acts and waits up to " +
      "waitMs (default 30 s) for the new state; the answer has the state before and after, and settled: false if it was not reached in time. " +
      "Stopping a service can take a site down: confirm with the technician when in doubt. Counts against the technician's rate limit.",
    inputSchema: {
      agent: agentParam,
      name: z.string().min(1).describe("the service's name (not its display name), as get_services shows it"),
      action: z.enum(serviceActions as [string, ...string[]]).describe("start, stop, restart, enable or disable"),
      dryRun: z.boolean().optional().describe("true: report what would change and change nothing"),
      waitMs: z.number().int().min(0).max(300_000).optional().describe("how long to wait for the new state; default 30000"),
    },
    outputSchema: {
      agent: z.string(),
      name: z.string(),
      action: z.string(),
      dryRun: z.boolean(),
      changed: z.boolean().describe("false when there was nothing to do"),
      settled: z.boolean().describe("false when waitMs passed before the new state"),
      before: serviceSchema,
      after: serviceSchema,
      serviceManager: z.string(),
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    async run(args, ctx) {
      const action = args.action as (typeof serviceActions)[number];
      const r = await withSystemAgent(deps, args.agent, "services", (sessionId) =>
        deps.api.system.controlService(sessionId, { name: args.name, action, dryRun: args.dryRun === true, waitMs: args.waitMs ?? 0 }, ctx.signal),
      );
      const before = serviceSchema.parse(r.before);
      const after = serviceSchema.parse(r.after);
      const show = (s: typeof before) => `${s.state}, ${s.startMode}${s.pid ? `, pid ${s.pid}` : ""}`;
      const verdict = r.dryRun
        ? r.changed
          ? "dry run: would change it; call again without dryRun to do it"
          : "dry run: nothing to do"
        : !r.changed
          ? "nothing to do"
          : r.settled
            ? "done"
            : "not settled within the wait: check again with get_services";
      return {
        structured: {
          agent: args.agent,
          name: args.name,
          action,
          dryRun: r.dryRun,
          changed: r.changed,
          settled: r.settled,
          before,
          after,
          serviceManager: r.serviceManager,
        },
        text: `${args.name} ${action} on ${args.agent} (${r.serviceManager}): ${show(before)} → ${show(after)}. ${verdict}.`,
      };
    },
  });
}
