// ExecService: StreamCommand and RunCommand over the command domain. Thin:
// request → CommandInput, output chunks → messages, outcome → CommandResult.
// Connect's ctx.signal (the client went away or canceled) cancels the command.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CommandResultSchema,
  Shell,
  type CommandResult,
  type ExecService,
  type RunCommandRequest,
  type StreamCommandResponseSchema,
} from "../../gen/guru/api/v1/exec_pb.js";
import type { CommandInput, CommandOutcome, CommandService } from "../domain/commands.ts";
import type { OutputStreamName } from "../domain/remote-commands.ts";
import { GuruError } from "../../lib/errors.ts";
import { apiExitReasons, apiOutputStreams, apiShells } from "../../lib/wire/exec-enums.ts";
import { principalOf } from "./context.ts";

function toInput(req: Omit<RunCommandRequest, "$typeName" | "$unknown">): CommandInput {
  // An unknown enum value goes on as text so the domain refuses and audits it.
  const shell = req.shell === Shell.UNSPECIFIED ? undefined : (apiShells.fromEnum(req.shell) ?? `shell enum ${req.shell}`);
  return {
    sessionId: req.sessionId,
    agentId: req.agentId,
    command: req.command,
    shell,
    workingDir: req.workingDir,
    timeoutMs: req.timeoutMs,
    env: req.env,
  };
}

function toResult(o: CommandOutcome): CommandResult {
  return create(CommandResultSchema, {
    exitCode: o.exitCode,
    signal: o.signal,
    durationMs: o.durationMs,
    reason: apiExitReasons.toEnum[o.reason],
    stdoutBytes: BigInt(o.stdoutBytes),
    stderrBytes: BigInt(o.stderrBytes),
    truncated: o.truncated,
    sessionId: o.sessionId,
  });
}

const apiStream = (stream: OutputStreamName) => apiOutputStreams.toEnum[stream];

export function execServiceImpl(commands: CommandService): ServiceImpl<typeof ExecService> {
  return {
    async *streamCommand(req, ctx) {
      const principal = principalOf(ctx);
      const input = toInput(req);
      // Aborted by the client (ctx.signal) or when this generator is abandoned.
      const abort = new AbortController();
      const onClientGone = () => abort.abort(ctx.signal.reason);
      ctx.signal.addEventListener("abort", onClientGone, { once: true });
      if (ctx.signal.aborted) onClientGone();

      // A one-slot handoff: the command's next chunk is not read until the
      // previous one was yielded and the consumer asked for more, so output
      // flows at the client's pace with one chunk held here at most.
      let slot: { message: MessageInitShape<typeof StreamCommandResponseSchema>; taken: () => void } | undefined;
      let ended: { outcome: CommandOutcome } | { error: unknown } | undefined;
      let wake: (() => void) | undefined;
      const running = commands
        .run(principal, input, {
          signal: abort.signal,
          onOutput: (stream, data) => {
            if (abort.signal.aborted) return;
            return new Promise<void>((taken) => {
              slot = { message: { event: { case: "output", value: { stream: apiStream(stream), data } } }, taken };
              wake?.();
            });
          },
        })
        .then(
          (outcome) => (ended = { outcome }),
          (error: unknown) => (ended = { error }),
        )
        .finally(() => wake?.());

      try {
        for (;;) {
          if (slot !== undefined) {
            const { message, taken } = slot;
            slot = undefined;
            yield message;
            taken();
            continue;
          }
          if (ended !== undefined) {
            if ("error" in ended) throw ended.error;
            yield { event: { case: "result", value: toResult(ended.outcome) } };
            return;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        ctx.signal.removeEventListener("abort", onClientGone);
        if (ended === undefined) {
          // Abandoned mid-command: cancel it and wait for the agent's answer,
          // so nothing outlives the call and the audit row is complete.
          abort.abort(new GuruError("canceled", "the client went away"));
          slot?.taken();
          await running;
        }
      }
    },

    async runCommand(req, ctx) {
      const chunks: Record<OutputStreamName, Uint8Array[]> = { stdout: [], stderr: [] };
      const outcome = await commands.run(principalOf(ctx), toInput(req), {
        signal: ctx.signal,
        // Bounded: past the per-stream cap the server drops output (server/link/remote-commands.ts).
        onOutput: (stream, data) => void chunks[stream].push(data),
      });
      return { stdout: concat(chunks.stdout), stderr: concat(chunks.stderr), result: toResult(outcome) };
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  return Buffer.concat(parts);
}
