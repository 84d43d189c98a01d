// PtyRequest on a channel → a pseudo-terminal → PtyResult. Channel data from
// the server is typed into the terminal, its output goes back as channel data
// within the server's credit, PtyResize events change its size. The terminal
// ends with the channel, the tunnel or the link, taking its process tree.
import { create } from "@bufbuild/protobuf";
import { ExitReason, Shell } from "../../gen/guru/wire/v1/exec_pb.js";
import { PtyResultSchema, PtyStartedSchema, type PtyRequest } from "../../gen/guru/wire/v1/pty_pb.js";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { Channel } from "../../lib/wire/link.ts";
import { startPty, type PtyOutcome } from "../pty/run-pty.ts";
import type { HandlerContext } from "./dispatch.ts";
import { requestedShell } from "./exec-handler.ts";

const exitReasons: Record<PtyOutcome["reason"], ExitReason> = {
  exited: ExitReason.EXITED,
  canceled: ExitReason.CANCELED,
  killed: ExitReason.KILLED,
};

export async function handlePty(channel: Channel, req: PtyRequest, ctx: HandlerContext): Promise<void> {
  const started = Date.now();
  const shell = requestedShell(req.shell);
  // Not awaited: the terminal does not wait for the local log, which logs its own failures.
  const record = (result: string, detail: Record<string, unknown>): void => {
    ctx.oplog
      .record({
        technicianId: ctx.tunnel.active?.technicianId ?? req.technicianId,
        sessionId: req.sessionId,
        operation: "terminal",
        detail: {
          terminalId: req.terminalId,
          command: req.command,
          shell: shell ?? "default",
          columns: req.columns,
          rows: req.rows,
          channel: channel.id,
          ...detail,
        },
        result,
      })
      .catch((err: unknown) => ctx.logger.warn({ err }, "could not write the operation log"));
  };
  const abort = new AbortController();
  const onChannelEnd = () => abort.abort(channel.signal.reason);
  channel.signal.addEventListener("abort", onChannelEnd, { once: true });
  let unregister: (() => void) | undefined;
  try {
    ctx.tunnel.require(req.sessionId);
    if (req.shell !== Shell.UNSPECIFIED && shell === undefined) throw new GuruError("invalid", `unknown shell ${req.shell}`);
    unregister = ctx.terminals.add(req.sessionId, (reason) => abort.abort(reason));
    const running = await startPty(
      {
        command: req.command,
        shell,
        workingDir: req.workingDir || undefined,
        columns: req.columns || 80,
        rows: req.rows || 24,
        env: req.env,
        term: req.term || "xterm-256color",
      },
      { onOutput: (data) => channel.sendData(data), signal: abort.signal },
      { policy: ctx.policy, pathGuard: ctx.pathGuard, logger: ctx.logger, execSetup: ctx.execSetup },
    );
    channel.sendEvent({ case: "ptyStarted", value: create(PtyStartedSchema, { pid: running.pid }) });
    record("started", { pid: running.pid });
    typeInto(channel, running, ctx).catch((err: unknown) => ctx.logger.warn({ err, channel: channel.id }, "terminal input ended with an error"));
    const outcome = await running.outcome;
    channel.sendResult({
      case: "pty",
      value: create(PtyResultSchema, {
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: outcome.durationMs,
        reason: exitReasons[outcome.reason],
        inputBytes: BigInt(outcome.inputBytes),
        outputBytes: BigInt(outcome.outputBytes),
      }),
    });
    const why = abort.signal.aborted ? toGuruError(abort.signal.reason).message : undefined;
    record(outcome.reason, {
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      durationMs: outcome.durationMs,
      inputBytes: outcome.inputBytes,
      outputBytes: outcome.outputBytes,
      why,
    });
  } catch (err) {
    const error = toGuruError(err);
    record(error.kind === "denied" || error.kind === "invalid" ? "refused" : "failed", { error: error.message, durationMs: Date.now() - started });
    throw error;
  } finally {
    unregister?.();
    channel.signal.removeEventListener("abort", onChannelEnd);
  }
}

/** Keystrokes and window changes from the server, until the channel ends. */
async function typeInto(channel: Channel, running: Awaited<ReturnType<typeof startPty>>, ctx: HandlerContext): Promise<void> {
  try {
    for await (const message of channel.messages()) {
      if (message.type === "data") {
        await running.write(message.data);
      } else if (message.type === "event" && message.event.case === "ptyResize") {
        const { columns, rows } = message.event.value;
        try {
          running.resize(columns, rows);
        } catch (err) {
          ctx.logger.debug({ err, channel: channel.id }, "terminal resize ignored");
        }
      }
    }
  } catch (err) {
    ctx.logger.debug({ err, channel: channel.id }, "terminal input ended");
  }
}
