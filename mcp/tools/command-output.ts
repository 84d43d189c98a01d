// One page of a command job, shared by run_command, start_command,
// get_command_output and cancel_command: the schema, the paging under the
// output cap (stdout and stderr share it), and the text a model reads.
import { z } from "zod";
import type { Job } from "../jobs.ts";
import type { AgentInfo } from "../api.ts";
import type { ToolDeps } from "./context.ts";
import { decodeText } from "../output-buffer.ts";
import { formatBytes, type ToolContext, type ToolOutput } from "../tool.ts";
import { shellNames } from "../../lib/wire/shells.ts";

export const commandInputShape = {
  command: z.string().min(1).describe("the command line, passed to the shell as one argument (pipes, && and redirects work)"),
  shell: z.enum(shellNames).optional().describe("default: the agent's (sh on Linux and macOS, powershell on Windows)"),
  workingDir: z.string().optional().describe("absolute directory to run in; default: the agent's working directory"),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(24 * 3600_000)
    .optional()
    .describe("kill the command (and its children) after this many ms; default 30 s, capped by the server's maximum"),
};

export const commandOutputShape = {
  jobId: z.string().describe("the job's id, for get_command_output and cancel_command"),
  agent: z.string().describe("the agent's name"),
  status: z.enum(["running", "exited", "timed_out", "canceled", "killed", "failed"]),
  exitCode: z.number().int().nullable().describe("the exit code once the command ended; non-zero is a normal result, not a tool error"),
  signal: z.string().nullable().describe("the signal that ended the process, if any"),
  durationMs: z.number().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  offset: z.number().int().describe("stdout offset (bytes) this page starts at"),
  nextOffset: z.number().int().describe("stdout offset to pass as `offset` for the next page"),
  stderrOffset: z.number().int(),
  nextStderrOffset: z.number().int().describe("stderr offset to pass as `stderrOffset` for the next page"),
  stdoutBytes: z.number().int().describe("stdout bytes received so far"),
  stderrBytes: z.number().int().describe("stderr bytes received so far"),
  complete: z.boolean().describe("the command ended and this page reaches the end of its output"),
  note: z.string().optional().describe("what was left out and how to get it, or what to do next"),
};

export type CommandOutput = z.infer<z.ZodObject<typeof commandOutputShape>>;

/** Waits until cond() holds or ms pass, sending a progress notification every second. */
export async function waitWithProgress(job: Job, cond: () => boolean, ms: number, ctx: ToolContext): Promise<boolean> {
  const tick = setInterval(() => {
    // Progress counts seconds since the command started: it only grows, as MCP requires.
    const seconds = Math.round((Date.now() - job.startedAt.getTime()) / 100) / 10;
    ctx.progress(seconds, undefined, `${job.agent.name}: running for ${Math.round(seconds)} s, ${formatBytes(job.stdout.total + job.stderr.total)} of output`);
  }, 1000);
  try {
    return await job.waitFor(cond, ms, ctx.signal);
  } finally {
    clearInterval(tick);
  }
}

/** Bytes of output past the given offsets, not yet returned. */
export function pendingBytes(job: Job, offset: number, stderrOffset: number): number {
  return Math.max(0, job.stdout.total - offset) + Math.max(0, job.stderr.total - stderrOffset);
}

export function pageOf(job: Job, offsets: { offset: number; stderrOffset: number }, capBytes: number, bufferBytes: number): ToolOutput<CommandOutput> {
  const ended = job.endedAt !== null;
  const outLeft = Math.max(0, job.stdout.total - Math.max(offsets.offset, job.stdout.start));
  const errLeft = Math.max(0, job.stderr.total - Math.max(offsets.stderrOffset, job.stderr.start));
  // stderr is usually short and says what went wrong: it gets up to half the
  // cap, stdout the rest, and either takes what the other leaves unused.
  const outShare = Math.min(outLeft, Math.max(Math.floor(capBytes / 2), capBytes - errLeft));
  const errShare = Math.min(errLeft, capBytes - outShare);
  const out = job.stdout.read(offsets.offset, outShare, ended);
  const err = job.stderr.read(offsets.stderrOffset, errShare, ended);
  const complete = ended && out.to === job.stdout.total && err.to === job.stderr.total;

  const notes: string[] = [];
  const more = (name: string, slice: { from: number; to: number }, total: number, param: string) => {
    if (slice.to < total)
      notes.push(
        `${name}: ${formatBytes(total - slice.to)} more not shown (this page holds bytes ${slice.from}-${slice.to} of ${total}); call get_command_output {"jobId": "${job.id}", "${param}": ${slice.to}} for the next page.`,
      );
  };
  more("stdout", out, job.stdout.total, "offset");
  more("stderr", err, job.stderr.total, "stderrOffset");
  if (out.dropped > 0 || err.dropped > 0)
    notes.push(
      `The oldest output was dropped (${formatBytes(out.dropped)} of stdout, ${formatBytes(err.dropped)} of stderr): guru mcp keeps the last ${formatBytes(bufferBytes)} of each stream.`,
    );
  if (job.outcome?.truncated)
    notes.push(
      `The server capped the output it forwarded (the command wrote ${formatBytes(job.outcome.stdoutBytes)} to stdout, ${formatBytes(job.outcome.stderrBytes)} to stderr); redirect the output to a file and page it with read_file to see all of it.`,
    );
  if (!ended)
    notes.push(
      `The command is still running; call get_command_output {"jobId": "${job.id}", "offset": ${out.to}, "stderrOffset": ${err.to}} to wait for more output and its exit code, or cancel_command {"jobId": "${job.id}"} to stop it.`,
    );
  if (job.status === "timed_out") notes.push("The command was killed at its timeout; run it again with a longer timeoutMs, or with start_command.");
  if (job.status === "failed" && job.error)
    notes.push(`The command's stream failed: ${job.error.message}. Its exit code is unknown; check on the endpoint before running it again.`);

  const structured: CommandOutput = {
    jobId: job.id,
    agent: job.agent.name,
    status: job.status,
    exitCode: job.outcome?.exitCode ?? null,
    signal: job.outcome?.signal ?? null,
    durationMs: job.outcome?.durationMs ?? null,
    stdout: decodeText(out.data),
    stderr: decodeText(err.data),
    offset: out.from,
    nextOffset: out.to,
    stderrOffset: err.from,
    nextStderrOffset: err.to,
    stdoutBytes: job.stdout.total,
    stderrBytes: job.stderr.total,
    complete,
    ...(notes.length > 0 ? { note: notes.join(" ") } : {}),
  };
  return { structured, text: render(structured) };
}

function headline(o: CommandOutput): string {
  const where = `job ${o.jobId} on ${o.agent}`;
  const took = o.durationMs === null ? "" : ` in ${o.durationMs} ms`;
  switch (o.status) {
    case "running":
      return `${where}: still running`;
    case "exited":
      return `${where}: exited with code ${o.exitCode}${took}`;
    case "timed_out":
      return `${where}: killed at its timeout${o.signal ? ` (${o.signal})` : ""}${took}`;
    case "canceled":
      return `${where}: canceled${o.exitCode === null ? "" : ` (exit code ${o.exitCode})`}`;
    case "killed":
      return `${where}: killed${o.signal ? ` by ${o.signal}` : ""}${took}`;
    case "failed":
      return `${where}: failed`;
  }
}

function render(o: CommandOutput): string {
  const parts = [headline(o)];
  if (o.stdout.length > 0 || o.stderr.length === 0) parts.push(`--- stdout (bytes ${o.offset}-${o.nextOffset} of ${o.stdoutBytes}) ---\n${o.stdout}`);
  if (o.stderr.length > 0) parts.push(`--- stderr (bytes ${o.stderrOffset}-${o.nextStderrOffset} of ${o.stderrBytes}) ---\n${o.stderr}`);
  if (o.note) parts.push(`Note: ${o.note}`);
  return parts.join("\n");
}

/**
 * Starts the command as a job, waits as `wait` says, and answers with its
 * first page. A client that gave up on the call stops the command too; a
 * refusal before the command started is this call's error, not a job.
 */
export async function startJob(
  deps: ToolDeps,
  agent: AgentInfo,
  args: z.infer<z.ZodObject<typeof commandInputShape>>,
  ctx: ToolContext,
  wait: (job: Job) => Promise<unknown>,
): Promise<ToolOutput<CommandOutput>> {
  const job = deps.jobs.start(agent, { command: args.command, shell: args.shell, workingDir: args.workingDir, timeoutMs: args.timeoutMs });
  await wait(job);
  if (ctx.signal.aborted) await job.cancel();
  if (job.status === "failed" && !job.started && job.error) {
    deps.jobs.forget(job.id);
    throw job.error;
  }
  return pageOf(job, { offset: 0, stderrOffset: 0 }, deps.options.maxOutputBytes, deps.options.jobBufferBytes);
}
