// RemoteCommands (the domain's port) over the AgentRouter: one channel per
// command carrying an ExecRequest; ChannelData frames become onOutput calls,
// the ExecResult becomes the outcome. Credit is granted only as messages() is
// consumed, and the next message is not taken while onOutput waits, so a slow
// consumer holds the agent's pipes instead of growing this process's memory.
// The per-stream output cap is enforced here too, not only trusted to the
// agent: past maxOutputBytes a stream's data is counted and dropped (still
// read, so credit flows and the agent reaches its result), and the outcome
// says truncated, whatever the agent claims.
import { create } from "@bufbuild/protobuf";
import { ExecRequestSchema, Shell, type ExecResult } from "../../gen/guru/wire/v1/exec_pb.js";
import { ChannelOpenSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import { wireExitReasons, wireOutputStreams, wireShells } from "../../lib/wire/exec-enums.ts";
import type { RemoteCommandOutcome, RemoteCommands } from "../domain/remote-commands.ts";
import type { AgentRouter } from "./agent-router.ts";

export interface RemoteCommandsOptions {
  /**
   * The agent enforces the timeout itself. If it has not answered this long
   * after the timeout (a wedged handler), we cancel the channel; if it still
   * says nothing after the same time again, the call fails with "timeout".
   */
  answerGraceMs?: number;
}

const defaultAnswerGraceMs = 5_000;

export function createRemoteCommands(router: AgentRouter, options: RemoteCommandsOptions = {}): RemoteCommands {
  const answerGraceMs = options.answerGraceMs ?? defaultAnswerGraceMs;

  return {
    async run(agentId, spec, io) {
      const channel = router.openChannel(
        agentId,
        create(ChannelOpenSchema, {
          request: {
            case: "exec",
            value: create(ExecRequestSchema, {
              command: spec.command,
              shell: spec.shell === undefined ? Shell.UNSPECIFIED : wireShells.toEnum[spec.shell],
              workingDir: spec.workingDir,
              timeoutMs: spec.timeoutMs,
              env: spec.env,
              maxOutputBytes: BigInt(spec.maxOutputBytes),
              sessionId: spec.sessionId,
              technicianId: spec.technicianId,
            }),
          },
        }),
        // Command output is interactive: it must not wait behind file transfers.
        { bulk: false },
      );
      io.onDispatched?.(channel.id);

      const signal = io.signal;
      const onAbort = () => channel.cancel(signal?.reason instanceof GuruError ? signal.reason.message : "the caller canceled the command");
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();

      let stalledTimer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        stalledTimer = setTimeout(() => {
          channel.cancel("the agent did not answer within the command's timeout");
          stalledTimer = setTimeout(
            () =>
              reject(
                new GuruError("timeout", `the agent did not finish the command within ${spec.timeoutMs + 2 * answerGraceMs} ms`, {
                  metadata: { timeoutMs: spec.timeoutMs + 2 * answerGraceMs },
                }),
              ),
            answerGraceMs,
          );
        }, spec.timeoutMs + answerGraceMs);
      });
      stalled.catch(() => undefined);

      const messages = channel.messages()[Symbol.asyncIterator]();
      let finished = false;
      let gaveUp = false;
      const received = { stdout: 0, stderr: 0 };
      let truncated = false;
      const consume = async (): Promise<RemoteCommandOutcome> => {
        for (;;) {
          const next = await messages.next();
          if (next.done) throw new GuruError("internal", `channel ${channel.id} ended without a result`);
          const message = next.value;
          if (message.type === "data") {
            // After a cancel the output has nobody to go to; reading on still
            // grants credit, so the agent is never stuck before its result.
            if (signal?.aborted || gaveUp) continue;
            const stream = wireOutputStreams.fromEnum(message.stream) ?? "stdout";
            const room = spec.maxOutputBytes - received[stream];
            received[stream] += message.data.length;
            if (message.data.length > room) truncated = true;
            if (room <= 0) continue;
            await io.onOutput(stream, message.data.length > room ? message.data.subarray(0, room) : message.data);
          } else if (message.type === "result") {
            finished = true;
            if (message.result.case !== "exec") throw new GuruError("internal", `the agent answered an exec with a ${String(message.result.case)} result`);
            const outcome = toOutcome(message.result.value);
            // The agent's counts, but never less than what it actually sent.
            return {
              ...outcome,
              stdoutBytes: Math.max(outcome.stdoutBytes, received.stdout),
              stderrBytes: Math.max(outcome.stderrBytes, received.stderr),
              truncated: outcome.truncated || truncated,
            };
          } else if (message.type === "error") {
            finished = true;
            throw message.error;
          }
        }
      };
      try {
        return await Promise.race([consume(), stalled]);
      } catch (err) {
        if (!finished) {
          // The consumer failed or the agent went quiet: the command must not outlive the call.
          gaveUp = true;
          channel.cancel(`the server stopped waiting: ${toGuruError(err).message}`);
          // Dropping what is queued cannot fail; the catch only keeps a bug from going unhandled.
          Promise.resolve(messages.return?.()).catch(() => undefined);
        }
        throw err;
      } finally {
        clearTimeout(stalledTimer);
        signal?.removeEventListener("abort", onAbort);
      }
    },
  };
}

function toOutcome(result: ExecResult): RemoteCommandOutcome {
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    durationMs: result.durationMs,
    reason: wireExitReasons.fromEnum(result.reason) ?? "exited",
    stdoutBytes: Number(result.stdoutBytes),
    stderrBytes: Number(result.stderrBytes),
    truncated: result.truncated,
  };
}
