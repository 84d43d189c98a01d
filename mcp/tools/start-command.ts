// start_command: start a long command as a job and answer at once; its output
// is paged with get_command_output.
import { defineTool } from "../tool.ts";
import { commandInputShape, commandOutputShape, startJob } from "./command-output.ts";
import { agentParam, onlineAgent, type ToolDeps } from "./context.ts";

// Long enough for a refusal (policy, offline, bad directory) to come back as
// this call's error rather than on the first get_command_output.
const startCheckMs = 750;

export function createStartCommandTool(deps: ToolDeps) {
  return defineTool({
    name: "start_command",
    title: "Start a long command on an agent",
    description:
      "Starts a shell command on a managed endpoint as a background job and returns its jobId at once, with any output of its first moments. " +
      "Use it for commands that take longer than a minute (installs, updates, scans, large copies), and pass a timeoutMs long enough for them (the default is 30 s). " +
      "Then call get_command_output {jobId, offset, stderrOffset} to wait for output and the exit code, page after page, and cancel_command to stop it. " +
      "Jobs live in this guru mcp process: they end if it exits, and finished jobs stay readable for a while.",
    inputSchema: { agent: agentParam, ...commandInputShape },
    outputSchema: commandOutputShape,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    async run(args, ctx) {
      const agent = await onlineAgent(deps, args.agent);
      return startJob(deps, agent, args, ctx, (job) => job.waitFor(() => job.started, startCheckMs, ctx.signal));
    },
  });
}
