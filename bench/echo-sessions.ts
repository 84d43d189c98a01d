// The echo benchmark's interactive sessions: `guru shell` and `ssh -tt` under
// a real pseudo-terminal (the measurement includes the client process and
// what its terminal does, as a person typing sees it), and the web viewer's
// WebSocket protocol spoken by a `ws` client. Each starts the same remote
// program by typing one line into the login shell, then echoes whatever byte
// it is sent.
import pty from "@lydell/node-pty";
import WebSocket from "ws";
import { guruBin, type Guru } from "./guru-peer.ts";
import type { SshPeer } from "./ssh-peer.ts";

export interface EchoSession {
  readonly name: string;
  /** Sends one byte; resolves with the milliseconds until it came back. */
  probe(byte: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * Typed into each login shell. `raw -echo`: the terminal driver neither
 * echoes nor buffers lines, so every echo is cat's read and write. The marker
 * is split in the typed line so only the program's own output matches it.
 */
const echoProgramLine = "stty raw -echo; printf 'RE''ADY\\n'; exec cat\r";
const ready = "READY";
const probeTimeoutMs = 10_000;
const startTimeoutMs = 30_000;
const columns = 80;
const rows = 24;

/** Output arrives here; write sends input. Both in text (ASCII only goes both ways after the start). */
function echoSession(name: string, write: (text: string) => void, onClose: () => Promise<void>) {
  let seen = "";
  let waiter: { text: string; resolve: () => void } | undefined;
  const receive = (text: string) => {
    seen = (seen + text).slice(-4096);
    if (waiter !== undefined && seen.includes(waiter.text)) {
      const w = waiter;
      waiter = undefined;
      seen = "";
      w.resolve();
    }
  };
  const waitFor = (text: string, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = undefined;
        reject(new Error(`${name}: ${what} not seen within ${timeoutMs} ms; last output: ${JSON.stringify(seen.slice(-300))}`));
      }, timeoutMs);
      waiter = {
        text,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      receive("");
    });
  const session: EchoSession = {
    name,
    async probe(byte) {
      seen = "";
      const echoed = waitFor(byte, probeTimeoutMs, `the echo of ${JSON.stringify(byte)}`);
      const t0 = performance.now();
      write(byte);
      await echoed;
      return performance.now() - t0;
    },
    close: onClose,
  };
  /** Waits for the shell's first output (its prompt), types the program's line, waits for the program. */
  const start = async (): Promise<EchoSession> => {
    const deadline = Date.now() + startTimeoutMs;
    while (seen === "" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    write(echoProgramLine);
    await waitFor(ready, Math.max(1, deadline - Date.now()), "the echo program's start");
    // Whatever the shell printed after the marker (a newline) is not an echo.
    await new Promise((r) => setTimeout(r, 200));
    seen = "";
    return session;
  };
  return { receive, start };
}

/** Runs `file args` under a pseudo-terminal here and types into it. */
async function ptyEcho(name: string, file: string, args: string[], env: Record<string, string>): Promise<EchoSession> {
  const term = pty.spawn(file, args, {
    name: "xterm-256color",
    cols: columns,
    rows,
    cwd: process.cwd(),
    env: { ...process.env, ...env } as Record<string, string>,
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => term.onExit(() => resolve()));
  void exit.then(() => (exited = true));
  const s = echoSession(
    name,
    (text) => term.write(text),
    async () => {
      if (!exited) term.kill("SIGHUP");
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5000))]);
    },
  );
  term.onData((data) => s.receive(data));
  return s.start().catch(async (err: unknown) => {
    if (!exited) term.kill("SIGKILL");
    throw err;
  });
}

/** `guru shell AGENT`, the CLI path, on the technician's open tunnel. */
export function openCliEcho(guru: Guru, agentName: string): Promise<EchoSession> {
  return ptyEcho("guru shell", process.execPath, [guruBin, "shell", agentName], guru.env);
}

/** `ssh -tt` over the ControlMaster that `peer.openMaster()` opened. */
export function openSshEcho(peer: SshPeer): Promise<EchoSession> {
  return ptyEcho("ssh", "ssh", ["-tt", ...peer.muxArgs, peer.target], {});
}

/**
 * The viewer page's protocol (web/viewer/viewer.js): subprotocol
 * guru.terminal.v1, the Origin of the page the server serves, a first text
 * message `{"open": {token, sessionId, columns, rows}}`, keystrokes as
 * binary messages, output as binary messages, status as text.
 */
export async function openViewerEcho(guru: Guru, sessionId: string): Promise<EchoSession> {
  const url = new URL("/terminal", guru.url);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, "guru.terminal.v1", { origin: new URL(guru.url).origin, perMessageDeflate: false });
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  const decoder = new TextDecoder();
  const s = echoSession(
    "viewer",
    (text) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.from(text), { binary: true });
    },
    async () => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ close: {} }));
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      ws.terminate();
    },
  );
  let failure: string | undefined;
  ws.on("open", () => ws.send(JSON.stringify({ open: { token: guru.token, sessionId, columns, rows } })));
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      s.receive(decoder.decode(data, { stream: true }));
      return;
    }
    const message = JSON.parse(data.toString("utf8")) as { error?: { code: string; message: string } };
    if (message.error) failure = `${message.error.code}: ${message.error.message}`;
  });
  ws.on("error", (err) => (failure = err.message));
  return s.start().catch((err: unknown) => {
    ws.terminate();
    throw failure === undefined ? err : new Error(`viewer: the terminal socket refused: ${failure}`);
  });
}
