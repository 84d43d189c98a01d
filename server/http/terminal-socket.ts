// The terminal WebSocket (`/terminal`, subprotocol guru.terminal.v1): one
// socket per terminal, for the CLI and for browsers alike, over HTTP/1.1
// whatever the listener also speaks. The client's first frame is a text
// TerminalOpen (proto3 JSON) carrying its credentials, never the URL; then
// binary frames are keystrokes one way and output the other, and text frames
// carry resize/close (client) and opened/exit/error (server).
//
// Backpressure end to end: output is taken from the terminal only while this
// socket holds less than outputHighWaterBytes unsent, so a slow client slows
// the remote program; keystrokes stop being read from the socket while more
// than inputHighWaterBytes wait for the agent's credit.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { create, fromJsonString, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { ExitReason, Shell } from "../../gen/guru/api/v1/exec_pb.js";
import { TerminalClientMessageSchema, TerminalServerMessageSchema, type TerminalClientMessage, type TerminalOpen } from "../../gen/guru/api/v1/terminal_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { Principal } from "../domain/principal.ts";
import type { TerminalHandle, TerminalInput, TerminalService } from "../domain/terminals.ts";
import { toConnectError } from "../rpc/errors.ts";
import { apiShells } from "../../lib/wire/exec-enums.ts";

const terminalProtocol = "guru.terminal.v1";

/** What the upgrade request says about the client, and a way to tell it the terminal waits. */
export interface TerminalRequestContext {
  /** The browser's Origin header, if any. */
  origin: string | undefined;
  /** The Host header the client connected with. */
  host: string | undefined;
  /** Tells the client the terminal waits (for consent) before opening. */
  waiting(reason: string, message: string): void;
}

export interface AuthenticatedTerminal {
  principal: Principal;
  input: TerminalInput;
  /** A viewer token's origin, echoed in the opened message. */
  origin?: string;
}

/** Turns the open message into who is asking and what for; the viewer adds its own tokens here. */
export type TerminalAuthenticator = (open: TerminalOpen, context: TerminalRequestContext) => Promise<AuthenticatedTerminal>;

export interface TerminalSocketOptions {
  terminals: Pick<TerminalService, "open">;
  authenticate: TerminalAuthenticator;
  logger: Logger;
  /** Time a client has to send its open message after the upgrade. */
  openTimeoutMs?: number;
  /** Sockets that have not opened a terminal yet; more get 503 (they cost memory, not yet audit). */
  maxPendingOpens?: number;
  maxPayloadBytes?: number;
  outputHighWaterBytes?: number;
  inputHighWaterBytes?: number;
}

const reasons = { exited: ExitReason.EXITED, timed_out: ExitReason.TIMED_OUT, canceled: ExitReason.CANCELED, killed: ExitReason.KILLED };

/** The technician-token authenticator: the open message's token, as `Authorization: Bearer` would carry it. */
export function technicianAuthenticator(tokens: { verify(token: string): Promise<Principal> }): TerminalAuthenticator {
  return async (open) => {
    if (open.token === "") throw new GuruError("unauthenticated", "missing token: put the technician token (or a viewer token) in the open message");
    const principal = await tokens.verify(open.token);
    return { principal, input: terminalInput(open, open.sessionId) };
  };
}

/** What the open message asks for, on the given tunnel session. */
export function terminalInput(open: TerminalOpen, sessionId: string): TerminalInput {
  const shell = open.shell === Shell.UNSPECIFIED ? undefined : (apiShells.fromEnum(open.shell) ?? `shell enum ${open.shell}`);
  return { sessionId, command: open.command, shell, workingDir: open.workingDir, columns: open.columns, rows: open.rows, env: open.env, term: open.term };
}

export function createTerminalSocketServer(options: TerminalSocketOptions) {
  const { logger } = options;
  const openTimeoutMs = options.openTimeoutMs ?? 10_000;
  const outputHighWaterBytes = options.outputHighWaterBytes ?? 256 * 1024;
  const inputHighWaterBytes = options.inputHighWaterBytes ?? 256 * 1024;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: options.maxPayloadBytes ?? 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has(terminalProtocol) ? terminalProtocol : false),
  });
  const sockets = new Set<WebSocket>();
  const maxPendingOpens = options.maxPendingOpens ?? 128;
  let pendingOpens = 0;

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const offered = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim());
    if (!offered.includes(terminalProtocol)) {
      const body = `the terminal socket speaks the WebSocket subprotocol ${terminalProtocol}\n`;
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    if (pendingOpens >= maxPendingOpens) {
      const body = "too many terminal sockets are opening at once; retry shortly\n";
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    pendingOpens++;
    let counted = true;
    const leavePending = () => {
      if (counted) pendingOpens--;
      counted = false;
    };
    socket.once("close", leavePending);
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.once("close", () => sockets.delete(ws));
      const header = (name: string) => (typeof req.headers[name] === "string" ? req.headers[name] : undefined);
      const context = {
        origin: header("origin"),
        host: header("host"),
        waiting: (reason: string, message: string) => send(ws, { message: { case: "waiting", value: { reason, message } } }),
      };
      void serve(ws, context, leavePending).catch((err: unknown) => logger.error({ err }, "terminal socket failed"));
    });
  }

  function send(ws: WebSocket, message: MessageInitShape<typeof TerminalServerMessageSchema>): void {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(toJsonString(TerminalServerMessageSchema, create(TerminalServerMessageSchema, message)));
  }

  function fail(ws: WebSocket, err: unknown): void {
    const connectError = toConnectError(err, logger);
    send(ws, { message: { case: "error", value: { code: codeToString(connectError.code), message: connectError.rawMessage } } });
    ws.close(1000, "terminal refused");
  }

  async function serve(ws: WebSocket, context: TerminalRequestContext, leavePending: () => void): Promise<void> {
    // What the client sends while the terminal starts (a resize, early keys) is kept for it.
    const early: [RawData, boolean][] = [];
    const keep = (raw: RawData, isBinary: boolean) => void early.push([raw, isBinary]);
    const open = await firstMessage(ws, openTimeoutMs, keep)
      .catch((err: unknown) => {
        fail(ws, err);
        return undefined;
      })
      .finally(leavePending);
    if (open === undefined) return;
    let terminal: TerminalHandle;
    let origin: string | undefined;
    try {
      const authenticated = await options.authenticate(open, context);
      origin = authenticated.origin;
      const { principal, input } = authenticated;
      terminal = await options.terminals.open(principal, input);
    } catch (err) {
      fail(ws, err);
      return;
    } finally {
      ws.off("message", keep);
    }
    if (ws.readyState !== ws.OPEN) {
      terminal.close("the client went away");
      for await (const _ of terminal.events()) break;
      return;
    }
    send(ws, {
      message: { case: "opened", value: { terminalId: terminal.id, sessionId: terminal.sessionId, agentId: terminal.agentId, origin: origin ?? "" } },
    });
    relayInput(ws, terminal, early);
    ws.once("close", () => terminal.close("the client disconnected"));
    try {
      for await (const event of terminal.events()) {
        if (event.type === "output") {
          await sendOutput(ws, event.data);
        } else {
          const o = event.outcome;
          send(ws, {
            message: {
              case: "exit",
              value: {
                exitCode: o.exitCode,
                signal: o.signal,
                durationMs: o.durationMs,
                reason: reasons[o.reason],
                inputBytes: BigInt(o.inputBytes),
                outputBytes: BigInt(o.outputBytes),
              },
            },
          });
          ws.close(1000, "the terminal ended");
        }
      }
    } catch (err) {
      fail(ws, err);
    }
  }

  function sendOutput(ws: WebSocket, data: Uint8Array): Promise<void> {
    if (ws.readyState !== ws.OPEN) return Promise.resolve();
    return new Promise((resolve) => {
      let resolved = false;
      ws.send(data, { binary: true }, () => {
        if (!resolved) resolve();
      });
      if (ws.bufferedAmount < outputHighWaterBytes) {
        resolved = true;
        resolve();
      }
    });
  }

  function relayInput(ws: WebSocket, terminal: TerminalHandle, early: [RawData, boolean][]): void {
    let waitingBytes = 0;
    let paused = false;
    const onMessage = (raw: RawData, isBinary: boolean) => {
      const data = toBuffer(raw);
      if (isBinary) {
        waitingBytes += data.byteLength;
        if (waitingBytes > inputHighWaterBytes && !paused) {
          paused = true;
          ws.pause();
        }
        void terminal.write(data).then(
          () => {
            waitingBytes -= data.byteLength;
            if (paused && waitingBytes <= inputHighWaterBytes) {
              paused = false;
              ws.resume();
            }
          },
          () => undefined, // the terminal ended; its events say how
        );
        return;
      }
      let message: TerminalClientMessage;
      try {
        message = fromJsonString(TerminalClientMessageSchema, data.toString("utf8"));
      } catch (err) {
        send(ws, { message: { case: "error", value: { code: "invalid_argument", message: `not a TerminalClientMessage: ${(err as Error).message}` } } });
        return;
      }
      try {
        if (message.message.case === "resize") terminal.resize(message.message.value.columns, message.message.value.rows);
        else if (message.message.case === "close") terminal.close("closed by the client");
        else throw new GuruError("invalid", `a ${String(message.message.case)} message is not expected once the terminal is open`);
      } catch (err) {
        // A bad resize is refused; the terminal goes on.
        const connectError = toConnectError(err, logger);
        send(ws, { message: { case: "error", value: { code: codeToString(connectError.code), message: connectError.rawMessage } } });
      }
    };
    for (const [raw, isBinary] of early) onMessage(raw, isBinary);
    ws.on("message", onMessage);
  }

  return {
    handleUpgrade,
    /** Closes every terminal socket (their terminals end with them). */
    async close(): Promise<void> {
      for (const ws of sockets) ws.close(1001, "the server is shutting down");
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
    get size() {
      return sockets.size;
    },
  };
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}

/** The open message, within timeoutMs; anything else first is refused. Later messages go to `then` from the same tick on. */
function firstMessage(ws: WebSocket, timeoutMs: number, then: (raw: RawData, isBinary: boolean) => void): Promise<TerminalOpen> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new GuruError("unauthenticated", `no open message within ${timeoutMs} ms`));
    }, timeoutMs);
    const onClose = () => {
      cleanup();
      reject(new GuruError("canceled", "the client closed the socket before opening a terminal"));
    };
    const onMessage = (raw: RawData, isBinary: boolean) => {
      cleanup();
      if (isBinary) return reject(new GuruError("invalid", "the first message must be a text TerminalClientMessage with open"));
      let message: TerminalClientMessage;
      try {
        message = fromJsonString(TerminalClientMessageSchema, toBuffer(raw).toString("utf8"));
      } catch (err) {
        return reject(new GuruError("invalid", `the first message is not a TerminalClientMessage: ${(err as Error).message}`));
      }
      if (message.message.case !== "open") return reject(new GuruError("invalid", "the first message must be open"));
      ws.on("message", then);
      resolve(message.message.value);
    };
    const cleanup = () => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
    };
    ws.on("message", onMessage);
    ws.on("close", onClose);
  });
}
