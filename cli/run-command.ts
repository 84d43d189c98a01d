// `guru run AGENT [--shell S] [--cwd DIR] [--timeout 30s] [--json] -- COMMAND…`:
// runs COMMAND on the agent within the technician's tunnel (an active one, or
// one the server opens for this command and closes after it; with
// --keep-tunnel one opened here and left open), streams
// its stdout and stderr to ours as they arrive, and exits with its exit code.
// Ctrl-C cancels the remote command (the agent kills its process tree).
//
// Exit codes: the remote exit code; 128+N when a signal N killed it; 124 when
// it timed out (as timeout(1) does); 130 when canceled here; 255 when the
// server refused or failed the call (as ssh does for its own errors).
import { once } from "node:events";
import { constants } from "node:os";
import { ConnectError } from "@connectrpc/connect";
import { describeFailure } from "./error-hints.ts";
import { ExitReason, OutputStream, Shell, type CommandResult } from "../gen/guru/api/v1/exec_pb.js";
import { apiExitReasons, apiShells } from "../lib/wire/exec-enums.ts";
import { isShellName, shellNames } from "../lib/wire/shells.ts";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { connect, resolveAgent, str, tunnelTo } from "./connection.ts";

const usage = `usage: guru run AGENT [--shell ${shellNames.join("|")}] [--cwd DIR] [--timeout 30s] [--json] [--keep-tunnel] -- COMMAND…`;

const exitTimedOut = 124;
const exitCanceled = 130;
const exitGuruError = 255;
const maxTimeoutMs = 0xffff_ffff;

/** "30" and "30s" are seconds; "500ms" and "2m" say their unit. */
export function parseTimeoutMs(value: string | undefined): number {
  if (value === undefined) return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (match === null) throw new GuruError("invalid", `--timeout "${value}" is not a duration such as 30s, 500ms or 2m`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[match[2] ?? "s"] ?? 1000;
  const ms = Math.round(Number(match[1]) * factor);
  if (ms < 1 || ms > maxTimeoutMs) throw new GuruError("invalid", `--timeout must be between 1 ms and ${maxTimeoutMs} ms`);
  return ms;
}

/** The exit code this process reports for the remote command's end. */
export function localExitCode(result: CommandResult): number {
  if (result.reason === ExitReason.TIMED_OUT) return exitTimedOut;
  if (result.reason === ExitReason.CANCELED) return exitCanceled;
  if (result.signal !== "") {
    const number = (constants.signals as Record<string, number | undefined>)[result.signal];
    return number === undefined ? exitGuruError : 128 + number;
  }
  return result.exitCode;
}

async function write(stream: NodeJS.WriteStream, data: Uint8Array): Promise<void> {
  if (!stream.write(data)) await once(stream, "drain");
}

export async function runCommand(argv: string[]): Promise<number> {
  const { positionals, flags, rest } = parseArgs(argv, ["json", "keep-tunnel"]);
  const [target] = positionals;
  const command = rest.join(" ");
  if (target === undefined || command.trim() === "") throw new GuruError("invalid", usage);
  const shellName = str(flags.shell);
  if (shellName !== undefined && !isShellName(shellName)) throw new GuruError("invalid", `unknown --shell "${shellName}"; ${usage}`);
  const timeoutMs = parseTimeoutMs(str(flags.timeout));
  const api = connect(flags);

  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // A closed pipe downstream (`guru run … | head`) ends the remote command too.
  const onPipeError = () => abort.abort();
  process.stdout.on("error", onPipeError);
  try {
    // One call for a one-off command: the server runs it in our active tunnel
    // to the agent, or in one it opens and closes around it. --keep-tunnel
    // opens one here and leaves it open for the next call.
    const agent = await resolveAgent(api, target);
    const kept = flags["keep-tunnel"] ? await tunnelTo(api, agent.agentId) : undefined;
    const request = {
      ...(kept ? { sessionId: kept.sessionId } : { agentId: agent.agentId }),
      command,
      shell: shellName === undefined ? Shell.UNSPECIFIED : apiShells.toEnum[shellName],
      workingDir: str(flags.cwd) ?? "",
      timeoutMs,
    };
    let result: CommandResult | undefined;
    if (flags.json) {
      const res = await api.exec.runCommand(request, { signal: abort.signal });
      result = res.result;
      if (result === undefined) throw new GuruError("internal", "the server answered without a result");
      const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
      process.stdout.write(
        `${JSON.stringify({
          agentId: agent.agentId,
          sessionId: result.sessionId,
          exitCode: result.exitCode,
          signal: result.signal || null,
          reason: apiExitReasons.fromEnum(result.reason) ?? "unspecified",
          durationMs: result.durationMs,
          stdout: text(res.stdout),
          stderr: text(res.stderr),
          stdoutBytes: Number(result.stdoutBytes),
          stderrBytes: Number(result.stderrBytes),
          truncated: result.truncated,
        })}\n`,
      );
    } else {
      for await (const message of api.exec.streamCommand(request, { signal: abort.signal })) {
        if (message.event.case === "output") {
          const { stream, data } = message.event.value;
          await write(stream === OutputStream.STDERR ? process.stderr : process.stdout, data);
        } else if (message.event.case === "result") {
          result = message.event.value;
        }
      }
      if (result === undefined) throw new GuruError("internal", "the command's stream ended without a result");
      if (result.truncated) process.stderr.write("guru run: output past the server's per-stream cap was not sent\n");
      if (result.reason === ExitReason.TIMED_OUT)
        process.stderr.write(`guru run: timed out after ${result.durationMs} ms; the remote process tree was killed\n`);
    }
    return localExitCode(result);
  } catch (err) {
    if (abort.signal.aborted) {
      process.stderr.write("guru run: canceled; the remote command was stopped\n");
      return exitCanceled;
    }
    if (err instanceof ConnectError) {
      process.stderr.write(`guru run: ${describeFailure(err)}\n`);
      return exitGuruError;
    }
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.stdout.off("error", onPipeError);
  }
}
