// One operation channel on a link: the inbound message queue with credit
// granted as the consumer reads, and outbound data bounded by the peer's
// credit. The link routes frames here and owns the channel table.
import { create } from "@bufbuild/protobuf";
import type { OutputStream } from "../../gen/guru/wire/v1/exec_pb.js";
import {
  ChannelCancelSchema,
  ChannelCreditSchema,
  ChannelErrorSchema,
  ChannelEventSchema,
  ChannelResultSchema,
  type ChannelEvent,
  type ChannelResult,
  type Frame,
} from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../errors.ts";
import type { Logger } from "../logging.ts";
import { encodeDataFrame, encodeFrame, makeFrame } from "./codec.ts";
import type { FramePool } from "./frame-pool.ts";
import { guruErrorFromWire, wireErrorOf } from "./error-kinds.ts";

export type ChannelMessage =
  | {
      type: "data";
      data: Uint8Array;
      offset: bigint;
      stream: OutputStream;
      /**
       * Gives the buffer under `data` back to the link's pool. A consumer that
       * is done with `data` (and every view of it) may call it; one that keeps
       * or forwards the bytes must not. Never calling it is always safe.
       */
      release?: () => void;
    }
  | { type: "event"; event: ChannelEvent["event"] }
  | { type: "result"; result: ChannelResult["result"] }
  | { type: "error"; error: GuruError }
  | { type: "cancel"; reason: string };

export interface Channel {
  readonly id: number;
  readonly bulk: boolean;
  /** Resolves once all of `data` is queued within credit (the buffer may then be reused). Calls are sent in call order. */
  sendData(data: Uint8Array, meta?: { offset?: bigint; stream?: OutputStream }): Promise<void>;
  sendEvent(event: ChannelEvent["event"]): void;
  /** Ends the channel. Await earlier sendData calls first, or the result may overtake their data. */
  sendResult(result: ChannelResult["result"]): void;
  /** Ends the channel with a wire ChannelError (kind + message). */
  sendError(error: GuruError): void;
  /** Asks the peer to stop; the channel ends when the peer answers with its result or error. */
  cancel(reason: string): void;
  /** Iterate once. Ends after a result or error; breaking out early discards (and credits) later data. */
  messages(): AsyncIterable<ChannelMessage>;
  /** Aborted (with a GuruError reason) on cancel, error or link loss; not on a normal result. */
  readonly signal: AbortSignal;
  /** Resolves when the channel has ended, whichever way. */
  readonly done: Promise<void>;
}

/** What a channel needs from its link. */
export interface ChannelHost {
  readonly logger: Logger;
  /** Our initial window: what the peer may send before we grant. */
  readonly receiveWindowBytes: number;
  /** Most bulk bytes one channel may hold in our send queue, whatever credit the peer grants. */
  readonly maxQueuedBytes: number;
  /** Unread inbound messages that cost no credit (events, empty data, cancels); more is a link violation. */
  readonly maxQueuedEvents: number;
  /** Unread inbound messages of any kind; more ends the channel (too_large). */
  readonly maxQueuedMessages: number;
  /** The peer's initial window, read when the channel opens. */
  sendWindowBytes(): number;
  /** Largest payload per data frame, given our chunk size and the peer's max frame. */
  chunkBytes(): number;
  /** Credit a bulk channel leaves unused for now (a terminal is open on the link: less bulk data may sit ahead of its frames). */
  bulkCreditHeldBytes(): number;
  sendUrgent(bytes: Uint8Array): void;
  sendBulk(bytes: Uint8Array, onWritten: () => void, onSent?: () => void): void;
  /** Reusable buffers for bulk data frames, when the socket allows reuse after a send. */
  readonly framePool?: FramePool;
  channelEnded(channel: ChannelImpl): void;
}

type Waiter = { resolve: () => void; reject: (err: GuruError) => void };

export class ChannelImpl implements Channel {
  readonly id: number;
  readonly bulk: boolean;
  readonly done: Promise<void>;
  private readonly host: ChannelHost;
  private readonly abort = new AbortController();
  private resolveDone!: () => void;
  private ended = false;
  /** Why sends fail from now on (cancel, end, link loss). */
  private sendBlocked: GuruError | undefined;
  private sendChain: Promise<void> = Promise.resolve();
  private sendCredit: number;
  private queuedBytes = 0;
  private roomWaiter: Waiter | undefined;
  // Inbound.
  private readonly inbox: ChannelMessage[] = [];
  private inboxHead = 0;
  /** Messages in the inbox that cost the peer no credit. */
  private queuedFree = 0;
  private reader: ((result: IteratorResult<ChannelMessage>) => void) | undefined;
  private iterated = false;
  private discarding = false;
  private receiveAllowance: number;
  private consumedUngranted = 0;
  private readonly grantThresholdBytes: number;

  constructor(host: ChannelHost, id: number, bulk: boolean) {
    this.host = host;
    this.id = id;
    this.bulk = bulk;
    this.sendCredit = host.sendWindowBytes();
    this.receiveAllowance = host.receiveWindowBytes;
    // Batched grants: one credit frame per eighth of the window keeps the
    // sender busy without a frame per chunk (≈ 970 MB/s in a two-process prototype
    // with 256 KiB chunks and a 2 MiB window; bench/wire-throughput.ts measures ours).
    this.grantThresholdBytes = Math.max(1, Math.floor(host.receiveWindowBytes / 8));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  sendData(data: Uint8Array, meta?: { offset?: bigint; stream?: OutputStream }): Promise<void> {
    const run = this.sendChain.then(() => this.sendNow(data, meta?.offset, meta?.stream ?? 0));
    this.sendChain = run.catch(() => {});
    return run;
  }

  private async sendNow(data: Uint8Array, offset: bigint | undefined, stream: OutputStream): Promise<void> {
    if (this.sendBlocked) throw this.sendBlocked;
    if (data.byteLength === 0) {
      this.sendFrame(encodeDataFrame(this.id, data, offset ?? 0n, stream), true);
      return;
    }
    let pos = 0;
    while (pos < data.byteLength) {
      if (this.usableCredit() <= 0 || this.queuedBytes >= this.host.maxQueuedBytes) await this.waitForRoom();
      if (this.sendBlocked) throw this.sendBlocked;
      const n = Math.min(data.byteLength - pos, this.host.chunkBytes(), this.usableCredit());
      const chunk = data.subarray(pos, pos + n);
      this.sendCredit -= n;
      const pool = this.bulk ? this.host.framePool : undefined;
      if (pool) {
        let release: (() => void) | undefined;
        const bytes = encodeDataFrame(this.id, chunk, offset === undefined ? 0n : offset + BigInt(pos), stream, (size) => {
          const taken = pool.take(size);
          release = taken.release;
          return taken.bytes;
        });
        this.sendFrame(bytes, true, release);
      } else {
        this.sendFrame(encodeDataFrame(this.id, chunk, offset === undefined ? 0n : offset + BigInt(pos), stream), true);
      }
      pos += n;
    }
  }

  private waitForRoom(): Promise<void> {
    return new Promise((resolve, reject) => (this.roomWaiter = { resolve, reject }));
  }

  private usableCredit(): number {
    return this.bulk ? this.sendCredit - this.host.bulkCreditHeldBytes() : this.sendCredit;
  }

  /** The link's held credit went down: a bulk sender waiting for room may go on. */
  creditReleased(): void {
    this.wakeSender();
  }

  private wakeSender(): void {
    const waiter = this.roomWaiter;
    if (waiter && this.usableCredit() > 0 && this.queuedBytes < this.host.maxQueuedBytes) {
      this.roomWaiter = undefined;
      waiter.resolve();
    }
  }

  /** Bulk channels queue everything after data behind it, so results never overtake their data. */
  private sendFrame(bytes: Uint8Array, ordered: boolean, onSent?: () => void): void {
    if (this.bulk && ordered) {
      this.queuedBytes += bytes.byteLength;
      this.host.sendBulk(
        bytes,
        () => {
          this.queuedBytes -= bytes.byteLength;
          this.wakeSender();
        },
        onSent,
      );
    } else {
      this.host.sendUrgent(bytes);
    }
  }

  private sendKind(kind: Frame["kind"], ordered: boolean): void {
    this.sendFrame(encodeFrame(makeFrame(this.id, kind)), ordered);
  }

  sendEvent(event: ChannelEvent["event"]): void {
    if (this.ignoredAfterEnd("sendEvent")) return;
    this.sendKind({ case: "event", value: create(ChannelEventSchema, { event }) }, true);
  }

  sendResult(result: ChannelResult["result"]): void {
    if (this.ignoredAfterEnd("sendResult")) return;
    this.sendKind({ case: "result", value: create(ChannelResultSchema, { result }) }, true);
    this.finish(new GuruError("canceled", `channel ${this.id} already finished with a result`), undefined);
  }

  sendError(error: GuruError): void {
    if (this.ignoredAfterEnd("sendError")) return;
    const value = create(ChannelErrorSchema, wireErrorOf(error));
    this.sendKind({ case: "error", value }, true);
    this.finish(error, error);
  }

  cancel(reason: string): void {
    if (this.ended || this.sendBlocked?.kind === "canceled") return;
    this.sendKind({ case: "cancel", value: create(ChannelCancelSchema, { reason }) }, false);
    this.blockSends(new GuruError("canceled", `channel ${this.id} was canceled: ${reason}`));
  }

  private ignoredAfterEnd(what: string): boolean {
    if (!this.ended) return false;
    // The usual race: the link dropped while a handler was finishing.
    this.host.logger.debug({ channelId: this.id }, `${what} on an ended channel ignored`);
    return true;
  }

  messages(): AsyncIterable<ChannelMessage> {
    if (this.iterated) throw new Error(`channel ${this.id}: messages() may be iterated only once`);
    this.iterated = true;
    const iterator: AsyncIterator<ChannelMessage> = {
      next: () => {
        const message = this.takeMessage();
        if (message) return Promise.resolve({ done: false, value: message });
        if (this.ended) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (this.reader = resolve));
      },
      return: () => {
        // The consumer stopped reading: drop what is queued and credit all
        // that arrives later, so the peer never stalls on a window nobody reads.
        this.discarding = true;
        while (this.takeMessage()) {}
        return Promise.resolve({ done: true, value: undefined });
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }

  private takeMessage(): ChannelMessage | undefined {
    if (this.inboxHead >= this.inbox.length) return undefined;
    const message = this.inbox[this.inboxHead++];
    if (costsNoCredit(message)) this.queuedFree--;
    if (this.inboxHead === this.inbox.length) {
      this.inbox.length = 0;
      this.inboxHead = 0;
    }
    if (message.type === "data") this.consumed(message.data.byteLength);
    return message;
  }

  private consumed(bytes: number): void {
    this.consumedUngranted += bytes;
    if (this.consumedUngranted >= this.grantThresholdBytes && !this.ended) {
      const grant = this.consumedUngranted;
      this.consumedUngranted = 0;
      this.receiveAllowance += grant;
      this.sendKind({ case: "credit", value: create(ChannelCreditSchema, { bytes: grant }) }, false);
    }
  }

  private deliver(message: ChannelMessage): void {
    const reader = this.reader;
    if (reader && this.inboxHead >= this.inbox.length) {
      this.reader = undefined;
      if (message.type === "data") this.consumed(message.data.byteLength);
      reader({ done: false, value: message });
      return;
    }
    if (costsNoCredit(message)) this.queuedFree++;
    this.inbox.push(message);
  }

  /**
   * Queues a message from the peer within the channel's bounds. Credit bounds
   * data bytes only: messages that cost none are capped (a peer past the cap
   * is hostile or broken, and the link fails), and so is the count of all
   * unread messages (a slow reader of tiny frames ends this channel only).
   */
  private deliverBounded(message: ChannelMessage): { flowControl: boolean; message: string } | undefined {
    const queued = this.inbox.length - this.inboxHead;
    const readerWaits = this.reader !== undefined && queued === 0;
    if (!readerWaits) {
      if (costsNoCredit(message) && this.queuedFree >= this.host.maxQueuedEvents) {
        return {
          flowControl: true,
          message: `channel ${this.id}: more than ${this.host.maxQueuedEvents} events (or empty data frames) sent before any was read`,
        };
      }
      if (queued >= this.host.maxQueuedMessages) {
        const error = new GuruError(
          "too_large",
          `channel ${this.id}: the peer sent more than ${this.host.maxQueuedMessages} messages that were not read yet; the operation was stopped`,
          { details: { maxQueuedMessages: this.host.maxQueuedMessages } },
        );
        this.host.logger.warn({ channelId: this.id, maxQueuedMessages: this.host.maxQueuedMessages }, "channel ended: too many unread messages from the peer");
        this.sendKind({ case: "cancel", value: create(ChannelCancelSchema, { reason: error.message }) }, false);
        this.finish(error, error, { type: "error", error });
        return undefined;
      }
    }
    this.deliver(message);
    return undefined;
  }

  /**
   * A frame from the peer for this channel. Returns a description of the
   * violation if the frame breaks the protocol (the link then fails).
   */
  receive(frame: Frame, release?: () => void): { flowControl: boolean; message: string } | undefined {
    if (this.ended) return undefined;
    const kind = frame.kind;
    switch (kind.case) {
      case "data": {
        const bytes = kind.value.data.byteLength;
        if (bytes > this.receiveAllowance) {
          return { flowControl: true, message: `channel ${this.id}: ${bytes} data bytes exceed the ${this.receiveAllowance} bytes of credit left` };
        }
        this.receiveAllowance -= bytes;
        if (this.discarding) {
          this.consumed(bytes);
          release?.();
          return undefined;
        }
        return this.deliverBounded({ type: "data", data: kind.value.data, offset: kind.value.offset, stream: kind.value.stream, release });
      }
      case "credit": {
        this.sendCredit += kind.value.bytes;
        // HTTP/2's rule: a window past 2^31-1 is a peer bug, and would let it
        // make us queue unbounded data on an interactive channel.
        if (this.sendCredit > 0x7fff_ffff) return { flowControl: true, message: `channel ${this.id}: credit grows past 2^31-1 bytes` };
        this.wakeSender();
        return undefined;
      }
      case "event":
        return this.discarding ? undefined : this.deliverBounded({ type: "event", event: kind.value.event });
      case "cancel": {
        if (this.sendBlocked?.kind === "canceled" && this.abort.signal.aborted) {
          // Only the first cancel means anything; repeats are dropped, not queued.
          return undefined;
        }
        const reason = kind.value.reason || "canceled by the peer";
        const error = new GuruError("canceled", `channel ${this.id} was canceled: ${reason}`);
        const violation = this.discarding ? undefined : this.deliverBounded({ type: "cancel", reason });
        this.blockSends(error);
        return violation;
      }
      case "result":
        this.finish(new GuruError("canceled", `channel ${this.id} was finished by the peer`), undefined, { type: "result", result: kind.value.result });
        return undefined;
      case "error": {
        const error = guruErrorFromWire(kind.value);
        this.finish(error, error, { type: "error", error });
        return undefined;
      }
      default:
        return { flowControl: false, message: `channel ${this.id}: a ${String(kind.case)} frame is not allowed on an operation channel` };
    }
  }

  /** The link is gone: the consumer sees `error` after what is already queued. */
  linkLost(error: GuruError): void {
    if (this.ended) return;
    this.finish(error, error, { type: "error", error });
  }

  private blockSends(error: GuruError): void {
    if (!this.sendBlocked) this.sendBlocked = error;
    const waiter = this.roomWaiter;
    this.roomWaiter = undefined;
    waiter?.reject(this.sendBlocked);
    if (!this.abort.signal.aborted) this.abort.abort(error);
  }

  private finish(sendError: GuruError, abortWith: GuruError | undefined, last?: ChannelMessage): void {
    if (this.ended) return;
    if (last && !this.discarding) {
      this.deliver(last);
    } else {
      // Ended from our side (or nobody reads): nothing more to hand out.
      this.inbox.length = 0;
      this.inboxHead = 0;
    }
    this.ended = true;
    if (abortWith && !this.abort.signal.aborted) this.abort.abort(abortWith);
    this.sendBlocked ??= sendError;
    const waiter = this.roomWaiter;
    this.roomWaiter = undefined;
    waiter?.reject(this.sendBlocked);
    const reader = this.reader;
    if (reader) {
      this.reader = undefined;
      reader({ done: true, value: undefined });
    }
    this.host.channelEnded(this);
    this.resolveDone();
  }
}

function costsNoCredit(message: ChannelMessage): boolean {
  return message.type !== "data" || message.data.byteLength === 0;
}
