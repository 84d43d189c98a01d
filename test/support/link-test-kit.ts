// Helpers for the wire engine's tests: a capturing logger, a socket tap that
// decodes what passes, and a connected server/agent pair of links.
import { createHash, randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { ExecRequestSchema, ExecResultSchema, ExitReason, OutputStream } from "../../gen/guru/wire/v1/exec_pb.js";
import { FileReadRequestSchema, FileReadResultSchema, FileWriteRequestSchema, FileWriteResultSchema } from "../../gen/guru/wire/v1/files_pb.js";
import { GuruError } from "../../lib/errors.ts";
import { pino } from "pino";
import { ChannelOpenSchema, type ChannelOpen, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import type { Logger } from "../../lib/logging.ts";
import { decodeFrame, encodeFrame } from "../../lib/wire/codec.ts";
import { linkedFrameSockets, type FrameSocket } from "../../lib/wire/frame-socket.ts";
import type { HeartbeatOptions } from "../../lib/wire/heartbeat.ts";
import { createLink, type Channel, type ChannelMessage, type Link } from "../../lib/wire/link.ts";
import { defaultWireLimits, type WireLimits } from "../../lib/wire/limits.ts";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger that keeps its lines in memory (level debug). */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

/** Wraps a socket; `onSend`/`onReceive` see every message; `dropReceive`/`dropSend` simulate a silent peer. */
function tapSocket(
  socket: FrameSocket,
  hooks: { onSend?: (bytes: Uint8Array) => void; onReceive?: (bytes: Uint8Array) => void } = {},
): FrameSocket & { dropReceive: boolean; dropSend: boolean } {
  const tapped = {
    dropReceive: false,
    dropSend: false,
    send(bytes: Uint8Array, done: (err?: Error) => void) {
      hooks.onSend?.(bytes);
      if (tapped.dropSend) {
        setImmediate(done);
        return;
      }
      socket.send(bytes, done);
    },
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    close: (code: number, reason: string) => socket.close(code, reason),
    terminate: () => socket.terminate(),
    onMessage(listener: (bytes: Uint8Array, isBinary: boolean) => void) {
      socket.onMessage((bytes, isBinary) => {
        hooks.onReceive?.(bytes);
        if (!tapped.dropReceive) listener(bytes, isBinary);
      });
    },
    onClose: (listener: (code: number, reason: string) => void) => socket.onClose(listener),
  };
  return tapped;
}

export interface LinkPair {
  server: Link;
  agent: Link;
  serverSocket: ReturnType<typeof tapSocket>;
  agentSocket: ReturnType<typeof tapSocket>;
  serverControl: Frame[];
  agentControl: Frame[];
  serverLog: LogLine[];
  agentLog: LogLine[];
}

export function linkPair(options: {
  limits?: Partial<WireLimits>;
  onChannelOpen?: (channel: Channel, open: ChannelOpen) => void;
  serverHeartbeat?: HeartbeatOptions;
  agentHeartbeat?: HeartbeatOptions;
  serverSocket?: FrameSocket;
  agentSocket?: FrameSocket;
  onServerSocketSend?: (bytes: Uint8Array) => void;
}): LinkPair {
  const limits = { ...defaultWireLimits, ...options.limits };
  const [rawServer, rawAgent] = options.serverSocket && options.agentSocket ? [options.serverSocket, options.agentSocket] : linkedFrameSockets();
  const serverSocket = tapSocket(rawServer, { onSend: options.onServerSocketSend });
  const agentSocket = tapSocket(rawAgent);
  const serverLogger = capturingLogger();
  const agentLogger = capturingLogger();
  const serverControl: Frame[] = [];
  const agentControl: Frame[] = [];
  const server = createLink({
    socket: serverSocket,
    role: "server",
    limits,
    logger: serverLogger.logger,
    onControl: (frame) => serverControl.push(frame),
    heartbeat: options.serverHeartbeat,
  });
  const agent = createLink({
    socket: agentSocket,
    role: "agent",
    limits,
    logger: agentLogger.logger,
    onControl: (frame) => agentControl.push(frame),
    onChannelOpen: options.onChannelOpen,
    heartbeat: options.agentHeartbeat,
  });
  return { server, agent, serverSocket, agentSocket, serverControl, agentControl, serverLog: serverLogger.lines, agentLog: agentLogger.lines };
}

/** A peer that speaks raw frames, for feeding a link bad input. */
export function rawPeer(socket: FrameSocket) {
  const received: Frame[] = [];
  let closedWith: { code: number; reason: string } | undefined;
  socket.onMessage((bytes) => received.push(decodeFrame(bytes, Number.MAX_SAFE_INTEGER)));
  socket.onClose((code, reason) => (closedWith = { code, reason }));
  return {
    received,
    get closed() {
      return closedWith;
    },
    sendFrame(frame: Frame) {
      socket.send(encodeFrame(frame), () => {});
    },
    sendBytes(bytes: Uint8Array) {
      socket.send(bytes, () => {});
    },
  };
}

export function nextTicks(n = 5): Promise<void> {
  return new Promise((resolve) => {
    const step = (left: number) => (left === 0 ? resolve() : setImmediate(() => step(left - 1)));
    step(n);
  });
}

export async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error("waitFor timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * An agent-side handler for the tests:
 * - exec "echo:TEXT": TEXT on stdout, then a result (exit code 0);
 * - exec "wait": waits for a cancel, then answers with exit reason CANCELED;
 * - fileRead {length}: `length` pseudo-random bytes (sent in 1 MiB calls), then a result with their SHA-256;
 * - fileWrite: reads data until the FileWriteFinish event, answers with the SHA-256 of what it read.
 */
export function demoAgentHandler(channel: Channel, open: ChannelOpen): void {
  void runDemo(channel, open).catch((err: unknown) => {
    if (err instanceof GuruError) channel.sendError(err);
    else channel.sendError(new GuruError("internal", String(err)));
  });
}

const pattern = randomBytes(1 << 20);

async function runDemo(channel: Channel, open: ChannelOpen): Promise<void> {
  const request = open.request;
  if (request.case === "exec") {
    const command = request.value.command;
    if (command.startsWith("echo:")) {
      await channel.sendData(new TextEncoder().encode(command.slice(5)), { stream: OutputStream.STDOUT });
      channel.sendResult({ case: "exec", value: create(ExecResultSchema, { exitCode: 0, reason: ExitReason.EXITED }) });
      return;
    }
    if (command === "wait") {
      for await (const message of channel.messages()) {
        if (message.type === "cancel") break;
      }
      channel.sendResult({ case: "exec", value: create(ExecResultSchema, { exitCode: -1, reason: ExitReason.CANCELED }) });
      return;
    }
    throw new GuruError("invalid", `unknown test command ${command}`);
  }
  if (request.case === "fileRead") {
    const hash = createHash("sha256");
    let sent = 0n;
    const length = request.value.length;
    while (sent < length) {
      const n = Number(length - sent < BigInt(pattern.byteLength) ? length - sent : BigInt(pattern.byteLength));
      const piece = pattern.subarray(0, n);
      hash.update(piece);
      await channel.sendData(piece, { offset: sent });
      sent += BigInt(n);
    }
    channel.sendResult({ case: "fileRead", value: create(FileReadResultSchema, { size: length, bytesSent: sent, sha256: hash.digest("hex") }) });
    return;
  }
  if (request.case === "fileWrite") {
    const hash = createHash("sha256");
    let received = 0n;
    for await (const message of channel.messages()) {
      if (message.type === "data") {
        hash.update(message.data);
        received += BigInt(message.data.byteLength);
      } else if (message.type === "event" && message.event.case === "fileWriteFinish") {
        break;
      } else if (message.type === "cancel") {
        throw new GuruError("canceled", "upload canceled");
      }
    }
    channel.sendResult({ case: "fileWrite", value: create(FileWriteResultSchema, { size: received, sha256: hash.digest("hex") }) });
    return;
  }
  throw new GuruError("invalid", `unsupported request ${String(request.case)}`);
}

/** Reads a channel to its end: concatenated-data hash, byte count, and the last message. */
export async function drain(channel: Channel, onData?: (bytes: number) => Promise<void> | void) {
  const hash = createHash("sha256");
  let bytes = 0;
  let last: ChannelMessage | undefined;
  const events: ChannelMessage[] = [];
  for await (const message of channel.messages()) {
    if (message.type === "data") {
      hash.update(message.data);
      bytes += message.data.byteLength;
      await onData?.(message.data.byteLength);
    } else {
      events.push(message);
    }
    last = message;
  }
  return { sha256: hash.digest("hex"), bytes, last, events };
}

export function execOpen(command: string): ChannelOpen {
  return create(ChannelOpenSchema, { request: { case: "exec", value: create(ExecRequestSchema, { command }) } });
}

export function fileReadOpen(length: number): ChannelOpen {
  return create(ChannelOpenSchema, { request: { case: "fileRead", value: create(FileReadRequestSchema, { path: "/test", length: BigInt(length) }) } });
}

export function fileWriteOpen(): ChannelOpen {
  return create(ChannelOpenSchema, { request: { case: "fileWrite", value: create(FileWriteRequestSchema, { path: "/test" }) } });
}
