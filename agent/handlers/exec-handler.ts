// ExecRequest on a channel → runCommand → ExecResult. Output goes out as
// channel data within the server's credit, so a slow client slows the
// command's pipes instead of growing memory.
import { create } from "@bufbuild/protobuf";
import { ExecResultSchema, ExitReason, OutputStream, Shell, type ExecRequest } from "../../gen/guru/wire/v1/exec_pb.js";
import { toGuruError } from "../../lib/errors.ts";
import type { Channel } from "../../lib/wire/link.ts";
import { requireCapability } from "../policy/local-policy.ts";
import { runCommand, type CommandOutcome, type CommandSpec } from "../exec/run-command.ts";
import type { HandlerContext } from "./dispatch.ts";

export const shellNames: Partial<Record<Shell, NonNullable<CommandSpec["shell"]>>> = {
  [Shell.BASH]: "bash",
  [Shell.SH]: "sh",
  [Shell.POWERSHELL]: "powershell",
  [Shell.PWSH]: "pwsh",
  [Shell.CMD]: "cmd",
};

const exitReasons: Record<CommandOutcome["reason"], ExitReason> = {
  exited: ExitReason.EXITED,
  timed_out: ExitReason.TIMED_OUT,
  canceled: ExitReason.CANCELED,
  killed: ExitReason.KILLED,
};

export async function handleExec(channel: Channel, req: ExecRequest, ctx: HandlerContext): Promise<void> {
  const started = Date.now();
  const record = (result: string, detail: Record<string, unknown>) =>
    ctx.oplog.record({
      technicianId: ctx.tunnel.active?.technicianId ?? req.technicianId,
      sessionId: req.sessionId,
      operation: "exec",
      detail: { command: req.command, shell: shellNames[req.shell] ?? "default", workingDir: req.workingDir, channel: channel.id, ...detail },
      result,
    });
  try {
    ctx.tunnel.require(req.sessionId);
    requireCapability(ctx.policy, "exec");
    const outcome = await runCommand(
      {
        command: req.command,
        shell: shellNames[req.shell],
        workingDir: req.workingDir || undefined,
        timeoutMs: req.timeoutMs,
        env: req.env,
        maxOutputBytes: Number(req.maxOutputBytes),
      },
      {
        onOutput: (stream, data) => channel.sendData(data, { stream: stream === "stdout" ? OutputStream.STDOUT : OutputStream.STDERR }),
        signal: channel.signal,
      },
      { policy: ctx.policy, pathGuard: ctx.pathGuard, launcher: ctx.launcher, logger: ctx.logger },
    );
    channel.sendResult({
      case: "exec",
      value: create(ExecResultSchema, {
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: outcome.durationMs,
        reason: exitReasons[outcome.reason],
        stdoutBytes: BigInt(outcome.stdoutBytes),
        stderrBytes: BigInt(outcome.stderrBytes),
        truncated: outcome.truncated,
      }),
    });
    void record(outcome.reason, { exitCode: outcome.exitCode, signal: outcome.signal, durationMs: outcome.durationMs });
  } catch (err) {
    const error = toGuruError(err);
    void record(error.kind === "denied" ? "refused" : "failed", { error: error.message, durationMs: Date.now() - started });
    throw error;
  }
}
