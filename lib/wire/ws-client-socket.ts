// The client end of an agent link's WebSocket once the upgrade is done: a
// FrameSocket that writes masked frames straight onto the TCP (or TLS) socket
// and reads the server's frames with WsFrameReader from reads the caller hands
// in (see agent/link/dial.ts, which reads into one reused buffer). The close
// handshake follows RFC 6455 7: whoever closes first sends a close frame, the
// other answers with one, and the server ends the TCP connection; a close
// that gets no answer is cut off after closeTimeoutMs.
import type { Socket } from "node:net";
import { isSendableCloseCode, truncateCloseReason } from "./close-codes.ts";
import type { FramePool } from "./frame-pool.ts";
import type { FrameSocket } from "./frame-socket.ts";
import { writeMaskedFrame, wsOpcodes } from "./masked-frames.ts";
import { WsFrameReader } from "./ws-frame-reader.ts";

export interface WsClientSocketOptions {
  maxPayloadBytes: number;
  pool: FramePool;
  /** How long a close we sent may wait for the server's answer before the connection is cut. */
  closeTimeoutMs?: number;
}

function closePayload(code: number | undefined, reason: string): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const text = Buffer.from(truncateCloseReason(reason), "utf8");
  const payload = Buffer.allocUnsafe(2 + text.byteLength);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}

export class WsClientSocket implements FrameSocket {
  readonly sentBytesReusable = true;
  /** The TCP (or TLS) socket under the WebSocket. */
  readonly socket: Socket;
  private readonly reader: WsFrameReader;
  private readonly closeTimeoutMs: number;
  private state: "open" | "closing" | "closed" = "open";
  /** What the close event reports: the server's close frame, or our own protocol error. */
  private closeCode = 1006;
  private closeReason = "";
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly messageListeners: ((bytes: Uint8Array, isBinary: boolean, release?: () => void) => void)[] = [];
  private readonly closeListeners: ((code: number, reason: string) => void)[] = [];
  /** Messages that came before anyone listened (sent right behind the upgrade answer). */
  private unheard: [Uint8Array, boolean, (() => void) | undefined][] = [];

  constructor(socket: Socket, options: WsClientSocketOptions) {
    this.socket = socket;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.reader = new WsFrameReader(
      {
        message: (bytes, isBinary, release) => {
          if (this.messageListeners.length === 0) this.unheard.push([bytes, isBinary, release]);
          for (const listener of this.messageListeners) listener(bytes, isBinary, release);
        },
        ping: (payload) => {
          if (this.state === "open") writeMaskedFrame(this.socket, wsOpcodes.pong, Buffer.from(payload));
        },
        close: (code, reason) => this.closedByServer(code, reason),
        protocolError: (code, message) => this.protocolError(code, message),
      },
      { maxPayloadBytes: options.maxPayloadBytes, pool: options.pool },
    );
    socket.setNoDelay(true);
    socket.setTimeout(0);
    // Without an 'error' listener a reset would be thrown as an uncaught exception; 'close' always follows.
    socket.on("error", () => {});
    socket.once("close", () => this.socketClosed());
  }

  /** Bytes the socket read: the caller may reuse `bytes` once this returns. */
  received(bytes: Uint8Array, start: number, end: number): void {
    if (this.state !== "closed") this.reader.feed(bytes, start, end);
  }

  /** True once the connection is gone (the close listeners ran). */
  get isClosed(): boolean {
    return this.state === "closed";
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  send(bytes: Uint8Array, done: (err?: Error) => void): void {
    // After a close frame nothing else may follow.
    if (this.state !== "open") {
      queueMicrotask(() => done(new Error(`the WebSocket is ${this.state}`)));
      return;
    }
    writeMaskedFrame(this.socket, wsOpcodes.binary, bytes, (err) => done(err ?? undefined));
  }

  close(code: number, reason: string): void {
    if (this.state !== "open") return;
    if (!isSendableCloseCode(code)) {
      this.terminate();
      return;
    }
    this.state = "closing";
    writeMaskedFrame(this.socket, wsOpcodes.close, closePayload(code, reason));
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  terminate(): void {
    this.reader.stop();
    this.socket.destroy();
  }

  onMessage(listener: (bytes: Uint8Array, isBinary: boolean, release?: () => void) => void): void {
    this.messageListeners.push(listener);
    const unheard = this.unheard;
    this.unheard = [];
    for (const message of unheard) listener(...message);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  private closedByServer(code: number, reason: string): void {
    this.closeCode = code;
    this.closeReason = reason;
    // Answer a close the server began; ours was already sent. Then let the server end the connection.
    if (this.state === "open") writeMaskedFrame(this.socket, wsOpcodes.close, closePayload(code === 1005 ? undefined : code, reason));
    this.state = "closing";
    this.socket.end();
    if (this.closeTimer === undefined) {
      this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
      this.closeTimer.unref();
    }
  }

  private protocolError(code: number, message: string): void {
    this.closeCode = code;
    this.closeReason = message;
    if (this.state === "open") writeMaskedFrame(this.socket, wsOpcodes.close, closePayload(code, message));
    this.state = "closing";
    // Nothing more from this server is read; no point waiting for its answer.
    this.socket.destroySoon();
  }

  private socketClosed(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.reader.stop();
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    for (const listener of this.closeListeners) listener(this.closeCode, this.closeReason);
  }
}
