// ExecRequest on a channel → runCommand → ExecResult. Output goes out as
// channel data within the server's credit, so a slow client slows the
// command's pipes instead of growing memory.
import { create } from "@bufbuild/protobuf";
import { ExecResultSchema, Shell, type ExecRequest } from "../../gen/guru/wire/v1/exec_pb.js";
import { redactCommandEnv } from "../../lib/command-env.ts";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import { wireExitReasons, wireOutputStreams, wireShells } from "../../lib/wire/exec-enums.ts";
import { shellNames, type ShellName } from "../../lib/wire/shells.ts";
import type { Channel } from "../../lib/wire/link.ts";
import { requireCapability } from "../policy/local-policy.ts";
import { runCommand } from "../exec/run-command.ts";
import type { HandlerContext } from "./dispatch.ts";

/** undefined: the agent's default shell. A value this agent does not know is refused, never run under the default. */
export function requestedShell(shell: Shell): ShellName | undefined {
  if (shell === Shell.UNSPECIFIED) return undefined;
  const name = wireShells.fromEnum(shell);
  if (name === undefined) throw new GuruError("invalid", `shell must be one of ${shellNames.join(", ")} (got shell enum ${shell})`, { details: { shell } });
  return name;
}

export async function handleExec(channel: Channel, req: ExecRequest, ctx: HandlerContext): Promise<void> {
  const started = Date.now();
  // Not awaited: the answer does not wait for the local log. record() logs its own failures and never rejects.
  const record = (result: string, detail: Record<string, unknown>): void => {
    ctx.oplog
      .record({
        technicianId: ctx.tunnel.active?.technicianId ?? req.technicianId,
        sessionId: req.sessionId,
        operation: "exec",
        detail: {
          command: req.command,
          shell: req.shell === Shell.UNSPECIFIED ? "default" : (wireShells.fromEnum(req.shell) ?? `shell enum ${req.shell}`),
          workingDir: req.workingDir,
          // Names and values, secret-looking values redacted: what the command was given.
          env: redactCommandEnv(req.env),
          channel: channel.id,
          ...detail,
        },
        result,
      })
      .catch((err: unknown) => ctx.logger.warn({ err }, "could not write the operation log"));
  };
  try {
    ctx.tunnel.require(req.sessionId);
    requireCapability(ctx.policy, "exec");
    const outcome = await runCommand(
      {
        command: req.command,
        shell: requestedShell(req.shell),
        workingDir: req.workingDir || undefined,
        timeoutMs: req.timeoutMs,
        env: req.env,
        maxOutputBytes: Number(req.maxOutputBytes),
      },
      {
        onOutput: (stream, data) => channel.sendData(data, { stream: wireOutputStreams.toEnum[stream] }),
        signal: channel.signal,
      },
      { policy: ctx.policy, pathGuard: ctx.pathGuard, launcher: ctx.launcher, logger: ctx.logger, setup: ctx.execSetup },
    );
    channel.sendResult({
      case: "exec",
      value: create(ExecResultSchema, {
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: outcome.durationMs,
        reason: wireExitReasons.toEnum[outcome.reason],
        stdoutBytes: BigInt(outcome.stdoutBytes),
        stderrBytes: BigInt(outcome.stderrBytes),
        truncated: outcome.truncated,
      }),
    });
    record(outcome.reason, { exitCode: outcome.exitCode, signal: outcome.signal, durationMs: outcome.durationMs });
  } catch (err) {
    const error = toGuruError(err);
    const refused = error.kind === "denied" || error.kind === "invalid";
    record(refused ? "refused" : "failed", { error: error.message, durationMs: Date.now() - started });
    throw error;
  }
}
