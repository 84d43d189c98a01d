// The few socket operations the link needs, so the same link runs over a real
// `ws` WebSocket and over an in-memory pair in unit tests.
import type WebSocket from "ws";
import { isSendableCloseCode, truncateCloseReason } from "./close-codes.ts";

export interface FrameSocket {
  /**
   * Sends one binary message; `done` runs once it left our buffers (or failed).
   * The socket may overwrite `bytes` (a client masks them in place): pass a
   * buffer encoded for this send, that nothing reads afterwards.
   */
  send(bytes: Uint8Array, done: (err?: Error) => void): void;
  /** True when, once `done` ran without error, nothing (not even the peer) refers to the bytes sent: they may be reused. */
  readonly sentBytesReusable?: boolean;
  /** Bytes accepted by send() and not yet written out. */
  readonly bufferedAmount: number;
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a close handshake (half-open links). */
  terminate(): void;
  /**
   * `release`, when given, returns the message's buffer to a pool: the
   * listener calls it once nothing refers to `bytes` (or any view of them)
   * any more, or never.
   */
  onMessage(listener: (bytes: Uint8Array, isBinary: boolean, release?: () => void) => void): void;
  onClose(listener: (code: number, reason: string) => void): void;
}

/** The WebSocket subprotocol of agent links: the wire package name. A server refuses any other. */
export const wireSubprotocol = "guru.wire.v1";

/** A FrameSocket over a `ws` WebSocket: the server's end of an agent link (the agent's is WsClientSocket). */
export function wsFrameSocket(ws: WebSocket): FrameSocket {
  // Without an 'error' listener `ws` errors (ECONNRESET, an invalid frame from
  // the peer) would be thrown as uncaught exceptions; 'close' always follows.
  ws.on("error", () => {});
  return {
    // ws writes the bytes to the TCP socket and calls back once written.
    sentBytesReusable: true,
    send(bytes, done) {
      try {
        ws.send(bytes, { binary: true }, (err) => done(err ?? undefined));
      } catch (err) {
        // ws throws while CONNECTING; report it like a failed write.
        queueMicrotask(() => done(err instanceof Error ? err : new Error(String(err))));
      }
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      if (ws.readyState === ws.CLOSING || ws.readyState === ws.CLOSED) return;
      if (!isSendableCloseCode(code)) {
        ws.terminate();
        return;
      }
      ws.close(code, truncateCloseReason(reason));
    },
    terminate() {
      ws.terminate();
    },
    onMessage(listener) {
      ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
        listener(bytes, isBinary);
      });
    },
    onClose(listener) {
      ws.on("close", (code: number, reason: Buffer) => listener(code, reason.toString("utf8")));
    },
  };
}

/** An in-memory FrameSocket; `inject` delivers raw bytes as if the peer had sent them. */
export interface LinkedFrameSocket extends FrameSocket {
  inject(bytes: Uint8Array, isBinary?: boolean): void;
}

/**
 * Two connected in-memory sockets for unit tests. Delivery is asynchronous
 * (one setImmediate per message, in order) and bufferedAmount counts bytes not
 * yet delivered, so the link's flow control and priority see a real backlog.
 */
export function linkedFrameSockets(): [LinkedFrameSocket, LinkedFrameSocket] {
  const a = new LinkedEnd();
  const b = new LinkedEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class LinkedEnd implements LinkedFrameSocket {
  peer: LinkedEnd | undefined;
  bufferedAmount = 0;
  private state: "open" | "closing" | "closed" = "open";
  private readonly messageListeners: ((bytes: Uint8Array, isBinary: boolean) => void)[] = [];
  private readonly closeListeners: ((code: number, reason: string) => void)[] = [];

  send(bytes: Uint8Array, done: (err?: Error) => void): void {
    if (this.state !== "open") {
      setImmediate(() => done(new Error("socket is closed")));
      return;
    }
    this.bufferedAmount += bytes.byteLength;
    setImmediate(() => {
      this.bufferedAmount -= bytes.byteLength;
      if (this.state === "closed") {
        done(new Error("socket is closed"));
        return;
      }
      this.peer?.receive(bytes);
      done();
    });
  }

  close(code: number, reason: string): void {
    if (this.state !== "open") return;
    this.state = "closing";
    // Queued after the messages already sent, as a close frame would be.
    setImmediate(() => {
      this.finish(code, reason);
      this.peer?.finish(code, reason);
    });
  }

  terminate(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    setImmediate(() => {
      this.emitClose(1006, "");
      this.peer?.finish(1006, "");
    });
  }

  onMessage(listener: (bytes: Uint8Array, isBinary: boolean) => void): void {
    this.messageListeners.push(listener);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  /** Test hook: delivers a raw message to this end, as if the peer had sent it. */
  inject(bytes: Uint8Array, isBinary = true): void {
    setImmediate(() => this.receive(bytes, isBinary));
  }

  private receive(bytes: Uint8Array, isBinary = true): void {
    if (this.state === "closed") return;
    for (const listener of this.messageListeners) listener(bytes, isBinary);
  }

  private finish(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.emitClose(code, reason);
  }

  private emitClose(code: number, reason: string): void {
    for (const listener of this.closeListeners) listener(code, reason);
  }
}
