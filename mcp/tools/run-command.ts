// run_command: run a shell command and wait for it, up to a bound; a longer
// command goes on as a job rather than failing at the client's timeout.
import { defineTool } from "../tool.ts";
import { commandInputShape, commandOutputShape, startJob, waitWithProgress } from "./command-output.ts";
import { agentParam, onlineAgent, type ToolDeps } from "./context.ts";

export function createRunCommandTool(deps: ToolDeps) {
  const waitS = Math.round(deps.options.waitMs / 1000);
  return defineTool({
    name: "run_command",
    title: "Run a command on an agent",
    description:
      `Runs a shell command on a managed endpoint and returns its exit code, stdout and stderr. A non-zero exit code is a normal result, not an error. ` +
      `Waits up to ${waitS} s: a command still running then keeps running as a job, and the result has status "running" and a jobId; call get_command_output with it to wait for the rest, or cancel_command to stop it. ` +
      `For commands you know are long (installs, scans), use start_command. Output over ${Math.round(deps.options.maxOutputBytes / 1024)} KiB per result is paged: the note says which offset to ask for next. ` +
      `Commands run as the agent's user with side effects on a real machine: prefer read-only commands to look around, and state what you will change before you change it. ` +
      `The agent's local policy may refuse a command; do not retry a refused command in another spelling.`,
    inputSchema: { agent: agentParam, ...commandInputShape },
    outputSchema: commandOutputShape,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    async run(args, ctx) {
      const agent = await onlineAgent(deps, args.agent);
      return startJob(deps, agent, args, ctx, (job) => waitWithProgress(job, () => job.endedAt !== null, deps.options.waitMs, ctx));
    },
  });
}
