// One agent link: decodes frames, routes them to the control listener or to
// channels, answers heartbeats, and fails the link (LinkError frame, warn log,
// close code) on any protocol violation. Bad input from one peer never throws
// out of here: the worst it does is close its own link.
import { create } from "@bufbuild/protobuf";
import {
  ChannelErrorSchema,
  ErrorKind as WireErrorKind,
  HeartbeatAckSchema,
  HeartbeatSchema,
  LinkErrorCode,
  LinkErrorSchema,
  type ChannelOpen,
  type Frame,
} from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../errors.ts";
import type { Logger } from "../logging.ts";
import { ChannelImpl, type Channel, type ChannelHost } from "./channel.ts";
import { closeCodeName, closeCodes } from "./close-codes.ts";
import { decodeFrame, encodeFrame, encodeHeartbeatAck, heartbeatSequenceOf, makeFrame, WireProtocolError } from "./codec.ts";
import { sharedFramePool } from "./frame-pool.ts";
import { createFrameSender } from "./frame-sender.ts";
import type { FrameSocket } from "./frame-socket.ts";
import { createHeartbeat, type Heartbeat, type HeartbeatOptions } from "./heartbeat.ts";
import { checkWireLimits, frameOverheadBytes, type WireLimits } from "./limits.ts";
import { createTokenBucket } from "./token-bucket.ts";

export type { Channel, ChannelMessage } from "./channel.ts";

export type LinkRole = "server" | "agent";

/** Text a peer sends us (a LinkError's message) is cut to this before it reaches a log. */
export const maxPeerTextChars = 256;

/** A peer's text, cut to maxPeerTextChars, for logs. */
function peerText(text: string): string {
  return text.length <= maxPeerTextChars ? text : `${text.slice(0, maxPeerTextChars)}… (${text.length} characters)`;
}

export interface LinkOptions {
  socket: FrameSocket;
  role: LinkRole;
  limits: WireLimits;
  logger: Logger;
  /** Frames on channel 0 except heartbeats (answered here). */
  onControl: (frame: Frame) => void;
  /** The peer opened a channel (agent side). Without it, a ChannelOpen from the peer is a protocol violation. */
  onChannelOpen?: (channel: Channel, open: ChannelOpen) => void;
  heartbeat?: HeartbeatOptions;
}

export interface Link {
  /** Opens a channel to the peer. `bulk` defaults to true for file reads and writes. */
  openChannel(open: ChannelOpen, options?: { bulk?: boolean }): Channel;
  /** Sends a control frame (channel 0) ahead of any bulk data. Ignored once the link closed. */
  sendControl(kind: Frame["kind"]): void;
  /** The peer's window and frame size from Hello/HelloAck; 0 keeps ours. Applies to channels opened afterwards. */
  setPeerLimits(peer: { initialWindowBytes: number; maxFrameBytes: number }): void;
  /** Starts (or replaces) heartbeats, e.g. on the agent once HelloAck gave the interval. */
  setHeartbeat(options: HeartbeatOptions): void;
  close(code: number, reason: string): void;
  /** Refuses the peer: a LinkError frame (code + message), a warn log line, then the close code. */
  fail(code: LinkErrorCode, message: string, closeCode: number): void;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly channelCount: number;
  /** When the last frame from the peer arrived (heartbeats included): the peer was alive then. */
  readonly lastReceivedAt: Date;
}

/** File transfers are bulk: their data waits behind interactive frames. Both sides derive it from the open. */
function isBulkOpen(open: ChannelOpen): boolean {
  return open.request.case === "fileRead" || open.request.case === "fileWrite";
}

/** Control frames that only one side may receive. */
const receiverOf = { hello: "server", helloAck: "agent", consentAsk: "agent", consentAnswer: "server" } as const;

export function createLink(options: LinkOptions): Link {
  const { socket, role, logger } = options;
  const limits = checkWireLimits(options.limits);
  const channels = new Map<number, ChannelImpl>();
  // Ids never repeat on a link: the server's are odd, the agent's even, each
  // increasing. So a frame for an id below the counter belongs to a channel
  // that ended (a harmless race), and any other unknown id is a peer bug.
  let nextLocalId = role === "server" ? 1 : 2;
  let highestPeerId = 0;
  let peer = { initialWindowBytes: limits.initialWindowBytes, maxFrameBytes: limits.maxFrameBytes };
  let chunkBytes = limits.chunkBytes;
  let heartbeat: Heartbeat | undefined;
  let lastReceivedAtMs = Date.now();
  let closedWith: { code: number; reason: string } | undefined;
  let resolveClosed!: (value: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (resolveClosed = resolve));

  // Every control frame may make us answer or log: a flood of them is bounded
  // here, before it reaches a listener or the socket's write buffer.
  const controlBudget = createTokenBucket({ capacity: limits.controlBurstFrames, refillPerSecond: limits.controlFramesPerSecond });

  // Channels someone is waiting on: while one is open, bulk channels keep less
  // data in flight, so a keystroke, its echo or a command's frames find less
  // ahead of them in socket buffers, and the peer spends less time on bulk
  // data before it gets to them. A terminal holds bulk back while it is open;
  // a command for its first commandBulkHoldMs (the timer releases it then).
  const interactiveChannels = new Map<number, NodeJS.Timeout | undefined>();

  function holdBulkFor(id: number, open: ChannelOpen): void {
    if (open.request.case === "pty") interactiveChannels.set(id, undefined);
    else if (open.request.case === "exec") interactiveChannels.set(id, setTimeout(() => releaseBulkHold(id), limits.commandBulkHoldMs).unref());
  }

  function releaseBulkHold(id: number): void {
    clearTimeout(interactiveChannels.get(id));
    if (interactiveChannels.delete(id) && interactiveChannels.size === 0) {
      for (const other of channels.values()) if (other.bulk) other.creditReleased();
    }
  }

  const sender = createFrameSender({
    socket,
    socketHighWaterBytes: limits.socketHighWaterBytes,
    onSendError: (err) => shutdown(closeCodes.abnormal, `write failed: ${err.message}`, "terminate"),
  });

  const host: ChannelHost = {
    logger,
    receiveWindowBytes: limits.initialWindowBytes,
    maxQueuedBytes: Math.max(limits.initialWindowBytes, limits.chunkBytes),
    maxQueuedEvents: limits.maxQueuedEvents,
    maxQueuedMessages: limits.maxQueuedMessages,
    sendWindowBytes: () => peer.initialWindowBytes,
    chunkBytes: () => chunkBytes,
    bulkCreditHeldBytes: () => (interactiveChannels.size > 0 ? Math.max(0, peer.initialWindowBytes - limits.interactiveBulkWindowBytes) : 0),
    sendUrgent: (bytes) => sender.sendUrgent(bytes),
    sendBulk: (bytes, onWritten, onSent) => sender.sendBulk(bytes, onWritten, onSent),
    framePool: socket.sentBytesReusable ? sharedFramePool(limits.maxFrameBytes) : undefined,
    channelEnded: (channel) => {
      channels.delete(channel.id);
      releaseBulkHold(channel.id);
    },
  };

  const isPeerId = (id: number): boolean => (id % 2 === 1) === (role === "agent");
  const wasOpened = (id: number): boolean => (isPeerId(id) ? id <= highestPeerId : id < nextLocalId);

  function sendControl(kind: Frame["kind"]): void {
    if (closedWith) {
      logger.debug({ kind: kind.case }, "control frame after the link closed ignored");
      return;
    }
    sender.sendUrgent(encodeFrame(makeFrame(0, kind)));
  }

  function fail(code: LinkErrorCode, message: string, closeCode: number): void {
    if (closedWith) return;
    logger.warn({ linkErrorCode: LinkErrorCode[code], closeCode: closeCodeName(closeCode) }, `closing agent link: ${message}`);
    sendControl({ case: "linkError", value: create(LinkErrorSchema, { code, message }) });
    shutdown(closeCode, message, "close");
  }

  function shutdown(code: number, reason: string, how: "close" | "terminate" | "none"): void {
    if (closedWith) return;
    closedWith = { code, reason };
    heartbeat?.stop();
    heartbeat = undefined;
    const error = new GuruError(
      role === "server" ? "agent_offline" : "unavailable",
      `the ${role === "server" ? "agent" : "server"} link closed (${closeCodeName(code)} ${code}${reason ? `: ${reason}` : ""})`,
    );
    for (const channel of [...channels.values()]) channel.linkLost(error);
    channels.clear();
    if (how === "close") socket.close(code, reason);
    else if (how === "terminate") socket.terminate();
    // After close(): urgent frames already handed to the socket precede its close frame.
    sender.stop();
    resolveClosed(closedWith);
  }

  function safely(what: string, listener: () => unknown): void {
    try {
      const result = listener();
      if (result instanceof Promise) result.catch((err: unknown) => logger.error({ err }, `${what} listener rejected`));
    } catch (err) {
      logger.error({ err }, `${what} listener threw`);
    }
  }

  /** `release` gives a pooled message buffer back: only a data frame's consumer may call it, once done with the bytes. */
  function onMessage(bytes: Uint8Array, isBinary: boolean, release?: () => void): void {
    if (closedWith) return;
    if (!isBinary) {
      fail(LinkErrorCode.MALFORMED_FRAME, "text message received; agent links carry binary guru.wire.v1 Frames only", closeCodes.unsupportedData);
      return;
    }
    // The common case on an idle link, answered without building Frame objects.
    const heartbeatSequence = heartbeatSequenceOf(bytes);
    if (heartbeatSequence !== undefined) {
      // Still a control frame: the fast path must not dodge the control budget.
      if (!takeControlBudget()) return;
      heartbeat?.received();
      lastReceivedAtMs = Date.now();
      sender.sendUrgent(encodeHeartbeatAck(heartbeatSequence));
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(bytes, limits.maxFrameBytes);
    } catch (err) {
      if (err instanceof WireProtocolError) fail(err.code, err.message, err.closeCode);
      else fail(LinkErrorCode.MALFORMED_FRAME, "frame could not be decoded", closeCodes.protocolError);
      return;
    }
    heartbeat?.received();
    lastReceivedAtMs = Date.now();
    try {
      dispatch(frame, release);
    } catch (err) {
      // Our own bug, not the peer's: keep the process, lose only this link.
      logger.error({ err, channelId: frame.channelId, kind: frame.kind.case }, "agent link dispatch failed");
      shutdown(closeCodes.internalError, "internal error handling a frame", "close");
    }
  }

  /** One control frame's share of the budget; past it the link fails (1008). */
  function takeControlBudget(): boolean {
    if (controlBudget.take()) return true;
    fail(
      LinkErrorCode.PROTOCOL_VIOLATION,
      `more than ${limits.controlBurstFrames} control frames at once (then ${limits.controlFramesPerSecond} a second) on channel 0`,
      closeCodes.policyViolation,
    );
    return false;
  }

  function dispatch(frame: Frame, release: (() => void) | undefined): void {
    const kind = frame.kind;
    const id = frame.channelId;
    if (id === 0) {
      if (!takeControlBudget()) return;
      switch (kind.case) {
        case "heartbeat":
          sendControl({ case: "heartbeatAck", value: create(HeartbeatAckSchema, { sequence: kind.value.sequence }) });
          return;
        case "heartbeatAck":
          return;
        case "hello":
        case "helloAck":
        // The server asks for consent, the agent answers; never the other way round.
        case "consentAsk":
        case "consentAnswer":
          if (receiverOf[kind.case] !== role) {
            fail(LinkErrorCode.PROTOCOL_VIOLATION, `a ${kind.case} frame may not be sent to the ${role}`, closeCodes.protocolError);
            return;
          }
          break;
        case "linkError":
          logger.warn({ linkErrorCode: LinkErrorCode[kind.value.code] ?? kind.value.code }, `peer reported a link error: ${peerText(kind.value.message)}`);
          break;
        case "tunnelOpen":
        case "tunnelReady":
        case "tunnelClose":
        case "tunnelClosed":
          break;
        default:
          fail(LinkErrorCode.PROTOCOL_VIOLATION, `a ${String(kind.case)} frame needs a channel id other than 0`, closeCodes.protocolError);
          return;
      }
      safely("onControl", () => options.onControl(frame));
      return;
    }
    if (kind.case === "open") {
      handleOpen(id, kind.value);
      return;
    }
    const channel = channels.get(id);
    if (channel) {
      const violation = channel.receive(frame, release);
      if (violation) {
        fail(violation.flowControl ? LinkErrorCode.FLOW_CONTROL : LinkErrorCode.PROTOCOL_VIOLATION, violation.message, closeCodes.protocolError);
      }
    } else if (wasOpened(id)) {
      logger.debug({ channelId: id, kind: kind.case }, "frame for an ended channel ignored");
    } else {
      fail(LinkErrorCode.UNKNOWN_CHANNEL, `a ${String(kind.case)} frame names channel ${id}, which was never opened`, closeCodes.protocolError);
    }
  }

  function handleOpen(id: number, open: ChannelOpen): void {
    if (!options.onChannelOpen || !isPeerId(id)) {
      const why = options.onChannelOpen
        ? `channel id ${id} belongs to the ${role}'s range`
        : `the ${role === "server" ? "agent" : "server"} may not open channels on this link`;
      fail(LinkErrorCode.PROTOCOL_VIOLATION, `ChannelOpen refused: ${why}`, closeCodes.protocolError);
      return;
    }
    if (id <= highestPeerId) {
      fail(
        LinkErrorCode.PROTOCOL_VIOLATION,
        `ChannelOpen refused: channel id ${id} is not above the last one opened (${highestPeerId})`,
        closeCodes.protocolError,
      );
      return;
    }
    highestPeerId = id;
    if (channels.size >= limits.maxChannels) {
      // The peer's limit may differ from ours: refuse this channel, keep the link.
      const value = create(ChannelErrorSchema, {
        kind: WireErrorKind.RATE_LIMITED,
        message: `too many open channels on this link (maxChannels ${limits.maxChannels}); retry when one finishes`,
      });
      sender.sendUrgent(encodeFrame(makeFrame(id, { case: "error", value })));
      return;
    }
    const channel = new ChannelImpl(host, id, isBulkOpen(open));
    channels.set(id, channel);
    holdBulkFor(id, open);
    const onChannelOpen = options.onChannelOpen;
    safely("onChannelOpen", () => onChannelOpen(channel, open));
  }

  function setHeartbeat(heartbeatOptions: HeartbeatOptions): void {
    if (closedWith) return;
    heartbeat?.stop();
    heartbeat = createHeartbeat({
      options: heartbeatOptions,
      sendHeartbeat: (sequence) => sendControl({ case: "heartbeat", value: create(HeartbeatSchema, { sequence }) }),
      // terminate, not close: a half-open peer would never answer the close handshake.
      onDeadline: (silentMs) => {
        logger.warn({ silentMs, deadlineMs: heartbeatOptions.deadlineMs }, "closing agent link: heartbeat deadline passed");
        shutdown(closeCodes.heartbeatTimeout, `nothing received for ${silentMs} ms`, "terminate");
      },
    });
  }

  socket.onMessage(onMessage);
  socket.onClose((code, reason) => shutdown(code, reason, "none"));
  if (options.heartbeat) setHeartbeat(options.heartbeat);

  return {
    openChannel(open, channelOptions) {
      if (closedWith) {
        throw new GuruError(role === "server" ? "agent_offline" : "unavailable", `the link is closed (${closeCodeName(closedWith.code)})`);
      }
      if (channels.size >= limits.maxChannels) {
        throw new GuruError(
          "rate_limited",
          `this link already has ${channels.size} open channels (maxChannels ${limits.maxChannels}); retry when one finishes`,
          {
            reason: "CHANNELS_EXHAUSTED",
            metadata: { maxChannels: limits.maxChannels },
          },
        );
      }
      if (nextLocalId > 0xffff_ffff) {
        throw new GuruError("unavailable", "channel ids on this link are used up; reconnect the link");
      }
      const id = nextLocalId;
      nextLocalId += 2;
      const channel = new ChannelImpl(host, id, channelOptions?.bulk ?? isBulkOpen(open));
      channels.set(id, channel);
      holdBulkFor(id, open);
      sender.sendUrgent(encodeFrame(makeFrame(id, { case: "open", value: open })));
      return channel;
    },
    sendControl,
    setPeerLimits(peerLimits) {
      const initialWindowBytes = peerLimits.initialWindowBytes || limits.initialWindowBytes;
      const maxFrameBytes = peerLimits.maxFrameBytes || limits.maxFrameBytes;
      if (maxFrameBytes <= frameOverheadBytes) {
        throw new GuruError("invalid", `the peer's maxFrameBytes (${maxFrameBytes}) leaves no room for data`);
      }
      peer = { initialWindowBytes, maxFrameBytes };
      chunkBytes = Math.min(limits.chunkBytes, maxFrameBytes - frameOverheadBytes);
    },
    setHeartbeat,
    close(code, reason) {
      shutdown(code, reason, "close");
    },
    fail,
    closed,
    get channelCount() {
      return channels.size;
    },
    get lastReceivedAt() {
      return new Date(lastReceivedAtMs);
    },
  };
}
