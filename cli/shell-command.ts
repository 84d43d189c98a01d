// `guru shell AGENT [--shell S] [--cwd DIR] [--env K=V]… [--keep-tunnel] [-- COMMAND…]`:
// an interactive terminal on the agent, as `ssh -t` gives. The local terminal
// goes into raw mode, so every key (Ctrl-C, Ctrl-D, Ctrl-Z, arrows) reaches the
// remote side; window changes follow (SIGWINCH); the local terminal is
// restored on every way out; the exit code is the remote one (128+N for a
// signal N, 255 when the server refused or the connection failed).
// Uses the technician's active tunnel to the agent or opens one for the
// session and closes it afterwards.
import { constants } from "node:os";
import { Shell } from "../gen/guru/api/v1/exec_pb.js";
import type { TerminalExit } from "../gen/guru/api/v1/terminal_pb.js";
import { GuruError, isGuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { openTerminalSocket, type TerminalConnection } from "../lib/terminal-client.ts";
import { connect, credentials, resolveAgent, str, tunnelTo } from "./connection.ts";

const usage = "usage: guru shell AGENT [--shell bash|sh|powershell|pwsh|cmd] [--cwd DIR] [--env NAME=VALUE]… [--keep-tunnel] [--attended] [-- COMMAND…]";
const shells: Record<string, Shell> = { bash: Shell.BASH, sh: Shell.SH, powershell: Shell.POWERSHELL, pwsh: Shell.PWSH, cmd: Shell.CMD };
const exitGuruError = 255;

export function shellExitCode(exit: TerminalExit): number {
  if (exit.signal !== "") {
    const number = (constants.signals as Record<string, number | undefined>)[exit.signal];
    return number === undefined ? exitGuruError : 128 + number;
  }
  return exit.exitCode < 0 ? exitGuruError : exit.exitCode;
}

function parseEnv(values: string | string[] | boolean | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of ([] as (string | boolean)[]).concat(values ?? [])) {
    const text = String(entry);
    const eq = text.indexOf("=");
    if (eq <= 0) throw new GuruError("invalid", `--env "${text}" is not NAME=VALUE`);
    env[text.slice(0, eq)] = text.slice(eq + 1);
  }
  return env;
}

export async function shellCommand(argv: string[]): Promise<number> {
  const { positionals, flags, rest } = parseArgs(argv, ["keep-tunnel", "attended"]);
  const [target] = positionals;
  if (target === undefined || positionals.length > 1) throw new GuruError("invalid", usage);
  const shellName = str(flags.shell);
  if (shellName !== undefined && shells[shellName] === undefined) throw new GuruError("invalid", `unknown --shell "${shellName}"; ${usage}`);
  const env = parseEnv(flags.env);
  const api = connect(flags);
  const { url, token } = credentials(flags);

  let tunnel: { sessionId: string; opened: boolean } | undefined;
  const stdin = process.stdin;
  const stdout = process.stdout;
  const raw = stdin.isTTY === true;
  const restore = () => {
    if (raw && stdin.isRaw) stdin.setRawMode(false);
  };
  // Last resort: whatever ends the process, the user's terminal is usable again.
  process.once("exit", restore);
  try {
    const agent = await resolveAgent(api, target);
    // Attended: the person at the endpoint approves commands (a terminal is one), nothing more.
    tunnel = await tunnelTo(api, agent.agentId, flags.attended === true ? { agentName: agent.name, capabilities: ["exec"] } : undefined);
    const size = () => ({ columns: stdout.isTTY ? stdout.columns : 80, rows: stdout.isTTY ? stdout.rows : 24 });
    let conn: TerminalConnection | undefined;
    const pending: Buffer[] = [];
    const opening = openTerminalSocket({
      url,
      open: {
        token,
        sessionId: tunnel.sessionId,
        command: rest.join(" "),
        shell: shellName === undefined ? Shell.UNSPECIFIED : shells[shellName],
        workingDir: str(flags.cwd) ?? "",
        env,
        term: process.env.TERM || "xterm-256color",
        ...size(),
      },
      onOutput(data) {
        if (conn === undefined) pending.push(data);
        else if (!stdout.write(data)) {
          conn.pause();
          stdout.once("drain", () => conn?.resume());
        }
      },
    });
    conn = await opening;
    for (const data of pending.splice(0)) stdout.write(data);
    const open = conn;
    if (raw) stdin.setRawMode(true);
    const onInput = (data: Buffer) => open.write(data);
    // Without a terminal (a pipe), the end of input is the terminal's Ctrl-D.
    const onEnd = () => open.write("\x04");
    const onResize = () => open.resize(size().columns, size().rows);
    const onSignal = () => open.close();
    stdin.on("data", onInput);
    if (!raw) stdin.once("end", onEnd);
    process.on("SIGWINCH", onResize);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onSignal);
    // Not in raw mode (a pipe), Ctrl-C is ours: pass it on as the byte a terminal would send.
    const onInterrupt = () => open.write("\x03");
    process.on("SIGINT", onInterrupt);
    try {
      const exit = await open.exit;
      return shellExitCode(exit);
    } finally {
      stdin.off("data", onInput);
      stdin.off("end", onEnd);
      stdin.pause();
      process.off("SIGWINCH", onResize);
      process.off("SIGTERM", onSignal);
      process.off("SIGHUP", onSignal);
      process.off("SIGINT", onInterrupt);
      restore();
    }
  } catch (err) {
    restore();
    if (isGuruError(err) || (err as { name?: string }).name === "ConnectError") {
      const message = isGuruError(err) ? err.message : ((err as { rawMessage?: string }).rawMessage ?? String(err));
      process.stderr.write(`\r\nguru shell: ${message}\r\n`);
      return exitGuruError;
    }
    throw err;
  } finally {
    process.off("exit", restore);
    if (tunnel?.opened && !flags["keep-tunnel"]) {
      await api.sessions.closeTunnel({ sessionId: tunnel.sessionId }).catch(() => undefined);
    }
  }
}
