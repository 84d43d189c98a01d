// Reads the WebSocket frames a server sends to a client (RFC 6455 section 5)
// from socket reads that land in one reused buffer. `ws` keeps every read's
// buffer and assembles each message into a fresh one: for an agent receiving a
// GiB in 1 MiB messages, a GiB of 64 KiB read buffers plus a GiB of message
// buffers, all new memory the kernel and V8 must fault in and collect (about
// 1.9 CPU-seconds per GiB more than this reader on a 2-core host). Here the
// bytes of a read are copied once, into the message they belong to, and large
// messages come from a pool that their consumer gives back (`release`).
//
// No extensions are negotiated, so RSV bits must be clear; a server never
// masks its frames. A protocol violation stops the reader and is reported
// once, with the close code the connection must end with.
import { isSendableCloseCode } from "./close-codes.ts";
import type { FramePool } from "./frame-pool.ts";

export interface WsFrameReaderEvents {
  /**
   * One whole message. `release`, when given, returns `bytes` to their pool:
   * call it once nothing refers to them (nor to any view of them) any more,
   * or never, and they are collected as usual.
   */
  message(bytes: Uint8Array, isBinary: boolean, release: (() => void) | undefined): void;
  ping(payload: Uint8Array): void;
  /** The peer's close frame; code 1005 when it named none. Nothing after it is read. */
  close(code: number, reason: string): void;
  /** The peer broke the protocol: the connection must close with `closeCode`. Nothing more is read. */
  protocolError(closeCode: number, message: string): void;
}

export interface WsFrameReaderOptions {
  /** Largest message, all its fragments together; more is close code 1009. */
  maxPayloadBytes: number;
  /** Where buffers of large single-frame messages come from. */
  pool: FramePool;
}

const opcode = Object.freeze({ continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa });

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export class WsFrameReader {
  private readonly events: WsFrameReaderEvents;
  private readonly options: WsFrameReaderOptions;
  private stopped = false;
  /** The frame header being read: 2 bytes, then up to 8 of extended length (a server sends no masking key). */
  private readonly header = Buffer.alloc(10);
  private headerFilled = 0;
  private inPayload = false;
  private frameOpcode = 0;
  private frameFin = false;
  private payload: Uint8Array = new Uint8Array(0);
  private payloadFilled = 0;
  private payloadRelease: (() => void) | undefined;
  /** A fragmented message in progress: its fragments so far, and whether it is binary. */
  private fragments: Uint8Array[] | undefined;
  private fragmentsBytes = 0;
  private fragmentsBinary = false;

  constructor(events: WsFrameReaderEvents, options: WsFrameReaderOptions) {
    this.events = events;
    this.options = options;
  }

  /** Stops reading: later bytes are ignored (the connection is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** Reads bytes[start, end). The caller may overwrite them once this returns. */
  feed(bytes: Uint8Array, start: number, end: number): void {
    let pos = start;
    while (pos < end && !this.stopped) {
      if (!this.inPayload) {
        pos = this.readHeader(bytes, pos, end);
        continue;
      }
      const take = Math.min(this.payload.byteLength - this.payloadFilled, end - pos);
      this.payload.set(bytes.subarray(pos, pos + take), this.payloadFilled);
      this.payloadFilled += take;
      pos += take;
      if (this.payloadFilled === this.payload.byteLength) this.endFrame();
    }
  }

  /** Takes header bytes; once the header is whole, starts the payload (or ends an empty frame). */
  private readHeader(bytes: Uint8Array, pos: number, end: number): number {
    while (pos < end) {
      this.header[this.headerFilled++] = bytes[pos++];
      if (this.headerFilled < 2) continue;
      const length7 = this.header[1] & 0x7f;
      const headerBytes = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0);
      if (this.headerFilled < headerBytes) continue;
      this.headerFilled = 0;
      this.startFrame(length7);
      return pos;
    }
    return pos;
  }

  private startFrame(length7: number): void {
    const first = this.header[0];
    const fin = (first & 0x80) !== 0;
    const code = first & 0x0f;
    if ((first & 0x70) !== 0) {
      this.fail(1002, "a frame has RSV bits set, but no extension was negotiated");
      return;
    }
    if ((this.header[1] & 0x80) !== 0) {
      this.fail(1002, "a server must not mask its frames");
      return;
    }
    let length = length7;
    if (length7 === 126) length = this.header.readUInt16BE(2);
    else if (length7 === 127) {
      const high = this.header.readUInt32BE(2);
      if (high & 0x8000_0000) {
        this.fail(1002, "a 64-bit frame length has its most significant bit set");
        return;
      }
      length = high * 0x1_0000_0000 + this.header.readUInt32BE(6);
    }
    const control = code >= 0x8;
    if (control) {
      if (code !== opcode.close && code !== opcode.ping && code !== opcode.pong) {
        this.fail(1002, `unknown control opcode ${code}`);
        return;
      }
      if (!fin) {
        this.fail(1002, "a control frame must not be fragmented");
        return;
      }
      if (length > 125) {
        this.fail(1002, `a control frame of ${length} bytes (at most 125)`);
        return;
      }
    } else if (code === opcode.continuation) {
      if (this.fragments === undefined) {
        this.fail(1002, "a continuation frame without a message to continue");
        return;
      }
    } else if (code === opcode.text || code === opcode.binary) {
      if (this.fragments !== undefined) {
        this.fail(1002, "a new message began before the fragmented one ended");
        return;
      }
    } else {
      this.fail(1002, `unknown data opcode ${code}`);
      return;
    }
    const messageBytes = control ? length : this.fragmentsBytes + length;
    if (messageBytes > this.options.maxPayloadBytes) {
      this.fail(1009, `a message of ${messageBytes} bytes or more exceeds the ${this.options.maxPayloadBytes}-byte limit`);
      return;
    }
    this.frameOpcode = code;
    this.frameFin = fin;
    this.payloadFilled = 0;
    this.payloadRelease = undefined;
    if (!control && fin && this.fragments === undefined) {
      // A whole message in one frame, the only kind a `ws` server sends: from the pool when it is large.
      const { bytes, release } = this.options.pool.take(length);
      this.payload = bytes;
      this.payloadRelease = release;
    } else {
      this.payload = Buffer.allocUnsafe(length);
    }
    this.inPayload = true;
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    this.inPayload = false;
    const payload = this.payload;
    this.payload = new Uint8Array(0);
    switch (this.frameOpcode) {
      case opcode.close:
        this.endWithClose(payload);
        return;
      case opcode.ping:
        this.events.ping(payload);
        return;
      case opcode.pong:
        return;
      case opcode.continuation:
        this.fragments?.push(payload);
        this.fragmentsBytes += payload.byteLength;
        if (this.frameFin) {
          const whole = Buffer.concat(this.fragments ?? []);
          const isBinary = this.fragmentsBinary;
          this.fragments = undefined;
          this.fragmentsBytes = 0;
          this.deliver(whole, isBinary, undefined);
        }
        return;
      default: {
        const isBinary = this.frameOpcode === opcode.binary;
        if (this.frameFin) {
          this.deliver(payload, isBinary, this.payloadRelease);
          return;
        }
        this.fragments = [payload];
        this.fragmentsBytes = payload.byteLength;
        this.fragmentsBinary = isBinary;
      }
    }
  }

  private deliver(bytes: Uint8Array, isBinary: boolean, release: (() => void) | undefined): void {
    if (!isBinary) {
      // Agent links refuse text, but a text message must still be valid UTF-8 (RFC 6455 8.1).
      try {
        strictUtf8.decode(bytes);
      } catch {
        this.fail(1007, "a text message is not valid UTF-8");
        return;
      }
    }
    this.events.message(bytes, isBinary, release);
  }

  private endWithClose(payload: Uint8Array): void {
    if (payload.byteLength === 1) {
      this.fail(1002, "a close frame of 1 byte (a code takes 2)");
      return;
    }
    let code = 1005;
    let reason = "";
    if (payload.byteLength >= 2) {
      code = (payload[0] << 8) | payload[1];
      if (!isSendableCloseCode(code)) {
        this.fail(1002, `invalid close code ${code}`);
        return;
      }
      try {
        reason = strictUtf8.decode(payload.subarray(2));
      } catch {
        this.fail(1007, "a close reason is not valid UTF-8");
        return;
      }
    }
    this.stopped = true;
    this.events.close(code, reason);
  }

  private fail(closeCode: number, message: string): void {
    this.stopped = true;
    this.inPayload = false;
    this.events.protocolError(closeCode, message);
  }
}
