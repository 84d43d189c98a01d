// A client of the terminal WebSocket (`/terminal`, guru.terminal.v1), for the
// CLI and tests: opens with the token in the first message, then keystrokes
// and resizes go out and output comes back until the exit.
import { create, fromJsonString, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import WebSocket from "ws";
import {
  TerminalClientMessageSchema,
  TerminalServerMessageSchema,
  type TerminalOpenSchema,
  type TerminalExit,
  type TerminalOpened,
} from "../gen/guru/api/v1/terminal_pb.js";
import { GuruError, type ErrorKind } from "./errors.ts";

const terminalProtocol = "guru.terminal.v1";

export interface TerminalClientOptions {
  /** The server's base URL (http or https). */
  url: string;
  open: MessageInitShape<typeof TerminalOpenSchema> & { token: string; sessionId: string };
  /** The Origin header, as a browser page would send it. */
  origin?: string;
  onOutput(data: Buffer): void;
  /** How long the server has to answer the open. */
  timeoutMs?: number;
  /** Extra certificate authorities for a wss URL (tests with a throwaway certificate). */
  ca?: Buffer;
}

export interface TerminalConnection {
  readonly opened: TerminalOpened;
  write(data: Uint8Array | string): void;
  resize(columns: number, rows: number): void;
  /** Asks the server to end the terminal (the shell is killed). */
  close(): void;
  /** Resolves with the exit; rejects with a GuruError when the server refused or failed it, or the socket dropped. */
  readonly exit: Promise<TerminalExit>;
  /** Bytes the socket has not sent yet. */
  readonly bufferedAmount: number;
  /** Stops reading output (backpressure reaches the remote program), and resumes. */
  pause(): void;
  resume(): void;
  /** Drops the socket without asking (the server then ends the terminal). */
  terminate(): void;
}

const kinds: Record<string, ErrorKind> = {
  invalid_argument: "invalid",
  not_found: "not_found",
  already_exists: "conflict",
  permission_denied: "denied",
  unauthenticated: "unauthenticated",
  unavailable: "unavailable",
  deadline_exceeded: "timeout",
  resource_exhausted: "rate_limited",
  failed_precondition: "failed_precondition",
  canceled: "canceled",
};

export function terminalSocketUrl(baseUrl: string): string {
  const url = new URL("/terminal", baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export function openTerminalSocket(options: TerminalClientOptions): Promise<TerminalConnection> {
  const ws = new WebSocket(terminalSocketUrl(options.url), terminalProtocol, {
    perMessageDeflate: false,
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.origin ? { origin: options.origin } : {}),
  });
  const send = (message: MessageInitShape<typeof TerminalClientMessageSchema>) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(toJsonString(TerminalClientMessageSchema, create(TerminalClientMessageSchema, message)));
  };
  let resolveExit!: (exit: TerminalExit) => void;
  let rejectExit!: (err: GuruError) => void;
  const exit = new Promise<TerminalExit>((resolve, reject) => {
    resolveExit = resolve;
    rejectExit = reject;
  });
  exit.catch(() => undefined);
  let failure: GuruError | undefined;

  return new Promise((resolve, reject) => {
    let opened: TerminalOpened | undefined;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new GuruError("timeout", `no answer from the terminal socket within ${options.timeoutMs ?? 30_000} ms`));
    }, options.timeoutMs ?? 30_000);
    ws.on("open", () => send({ message: { case: "open", value: options.open } }));
    ws.on("message", (raw: Buffer, isBinary: boolean) => {
      if (isBinary) {
        options.onOutput(raw);
        return;
      }
      const message = fromJsonString(TerminalServerMessageSchema, raw.toString("utf8")).message;
      if (message.case === "opened") {
        opened = message.value;
        clearTimeout(timer);
        resolve(connection(opened));
      } else if (message.case === "exit") {
        resolveExit(message.value);
      } else if (message.case === "error") {
        failure = new GuruError(kinds[message.value.code] ?? "internal", message.value.message, { details: { code: message.value.code } });
        // Before opened: the open failed. After: a refused resize (the terminal goes on) or its end.
        if (opened === undefined) {
          clearTimeout(timer);
          reject(failure);
        }
      }
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      const error = new GuruError("unavailable", `terminal socket: ${err.message}`, { cause: err });
      reject(error);
      rejectExit(error);
    });
    ws.on("close", (code, reason) => {
      clearTimeout(timer);
      const error =
        failure ?? new GuruError("unavailable", `the terminal socket closed (${code}${reason.length ? `: ${reason}` : ""}) before the terminal ended`);
      reject(error);
      rejectExit(error);
    });
  });

  function connection(opened: TerminalOpened): TerminalConnection {
    return {
      opened,
      write(data) {
        if (ws.readyState === WebSocket.OPEN) ws.send(typeof data === "string" ? Buffer.from(data) : data, { binary: true });
      },
      resize(columns, rows) {
        send({ message: { case: "resize", value: { columns, rows } } });
      },
      close() {
        send({ message: { case: "close", value: {} } });
      },
      exit,
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      pause() {
        ws.pause();
      },
      resume() {
        ws.resume();
      },
      terminate() {
        ws.terminate();
      },
    };
  }
}
