// get_command_output: the next page of a job's output, waiting (up to the
// bound) for the command to end or for a page's worth of output.
import { z } from "zod";
import { defineTool } from "../tool.ts";
import { commandOutputShape, pageOf, pendingBytes, waitWithProgress } from "./command-output.ts";
import type { ToolDeps } from "./context.ts";

export function createGetCommandOutputTool(deps: ToolDeps) {
  const waitS = Math.round(deps.options.waitMs / 1000);
  return defineTool({
    name: "get_command_output",
    title: "Get a command's output",
    description:
      "Returns a job's output from the given offsets (bytes of stdout and of stderr), its status, and its exit code once it ended. " +
      `If the command is still running, it first waits up to waitMs (default and maximum ${waitS} s) for the command to end or for a full page of output. ` +
      "Pass the nextOffset and nextStderrOffset of the previous result to read on; `complete: true` means you have everything. " +
      "Canceling this call stops the command too.",
    inputSchema: {
      jobId: z.string().min(1).describe("the jobId from run_command or start_command"),
      offset: z.number().int().min(0).optional().describe("stdout byte offset to read from (the previous nextOffset); default 0"),
      stderrOffset: z.number().int().min(0).optional().describe("stderr byte offset to read from (the previous nextStderrOffset); default 0"),
      waitMs: z.number().int().min(0).optional().describe(`how long to wait for the command while it runs; default ${waitS} s; 0 answers at once`),
    },
    outputSchema: commandOutputShape,
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    async run(args, ctx) {
      const job = deps.jobs.get(args.jobId);
      const offsets = { offset: args.offset ?? 0, stderrOffset: args.stderrOffset ?? 0 };
      const waitMs = Math.min(args.waitMs ?? deps.options.waitMs, deps.options.waitMs);
      await waitWithProgress(
        job,
        () => job.endedAt !== null || pendingBytes(job, offsets.offset, offsets.stderrOffset) >= deps.options.maxOutputBytes,
        waitMs,
        ctx,
      );
      if (ctx.signal.aborted) await job.cancel();
      return pageOf(job, offsets, deps.options.maxOutputBytes, deps.options.jobBufferBytes);
    },
  });
}
