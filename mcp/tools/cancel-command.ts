// cancel_command: stop a job; the server kills the command's whole process tree.
import { z } from "zod";
import { defineTool } from "../tool.ts";
import { commandOutputShape, pageOf } from "./command-output.ts";
import type { ToolDeps } from "./context.ts";

export function createCancelCommandTool(deps: ToolDeps) {
  return defineTool({
    name: "cancel_command",
    title: "Cancel a running command",
    description:
      "Stops a running job started by run_command or start_command: the command and every process it started are killed on the endpoint. " +
      "Returns the job's final status and the start of its output (page the rest with get_command_output). Canceling a job that already ended changes nothing.",
    inputSchema: { jobId: z.string().min(1).describe("the jobId from run_command or start_command") },
    outputSchema: commandOutputShape,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    async run(args) {
      const job = deps.jobs.get(args.jobId);
      await job.cancel();
      return pageOf(job, { offset: 0, stderrOffset: 0 }, deps.options.maxOutputBytes, deps.options.jobBufferBytes);
    },
  });
}
