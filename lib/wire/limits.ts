// The named limits of one agent link. Both sides start from the defaults; the
// window and frame size a peer announces in Hello/HelloAck replace ours for
// what we send to it (Link.setPeerLimits).
import { GuruError } from "../errors.ts";

export interface WireLimits {
  /** Largest encoded Frame accepted from the peer; larger ones close the link (1009). */
  maxFrameBytes: number;
  /** Largest ChannelData payload we put in one frame; bigger sends are split. */
  chunkBytes: number;
  /** Payload bytes a peer may send on a new channel before we grant more. */
  initialWindowBytes: number;
  /** Channels open at once on one link. */
  maxChannels: number;
  /** Bulk data waits while the socket holds this many unsent bytes, so interactive frames stay fast. */
  socketHighWaterBytes: number;
  /**
   * While a terminal is open on the link, the most bulk data one channel keeps
   * in flight (sent and not yet credited back), whatever the peer's window.
   * Socket buffers deliver in order, so a keystroke or its echo waits until
   * the peer has read what is in flight; a receiver short of CPU reads it slowly.
   */
  interactiveBulkWindowBytes: number;
  /**
   * A command holds bulk data to interactiveBulkWindowBytes like a terminal,
   * but only for this long after its channel opened: its start (and all of a
   * short command) finds little ahead of it, while a long-running one does not
   * slow transfers for its whole life.
   */
  commandBulkHoldMs: number;
  /**
   * Messages that carry no credit (ChannelEvent, empty data, cancel) one
   * channel may hold unread. Credit bounds data bytes; this bounds the rest,
   * so a peer cannot grow our memory with events nobody has read yet.
   */
  maxQueuedEvents: number;
  /**
   * Messages of any kind one channel may hold unread. With the window this
   * bounds a channel's inbound memory even when a peer splits its credit into
   * one-byte frames; past it the channel ends (too_large), not the link.
   */
  maxQueuedMessages: number;
  /** Control frames (channel 0: heartbeats, acks, tunnel frames) a peer may send in a burst. */
  controlBurstFrames: number;
  /** Control frames per second a peer may keep sending after the burst; a flood closes the link. */
  controlFramesPerSecond: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Room for everything in a ChannelData frame except the payload: channel id,
 * oneof tag and length, data tag and length, offset, stream. 64 bytes covers
 * the worst case (about 30) with margin.
 */
export const frameOverheadBytes = 64;

/**
 * Chosen by measurement. On the link alone (bench/wire-throughput.ts, busy
 * machine) 256 KiB chunks with 2, 4 and 8 MiB windows moved about the same
 * (0.61-0.65 of raw `ws`) and 1 MiB chunks with an 8 MiB window 0.96, while a
 * ping on the link slowed as the window grew. End to end (a 512 MiB ReadFile
 * through server and agent processes, quiet machine, A/B twice in one run):
 * 1 MiB chunks moved 104-110 MiB/s against 86-89 with 256 KiB chunks, with
 * less CPU on every side (fewer frames, grants and socket callbacks per
 * byte), and a 2 MiB window with a 1 MiB socket high-water mark moved as much
 * as 4 MiB with 4 MiB (105-107 against 109-110). The smaller pair wins: the
 * window is what an urgent frame can find ahead of it in socket buffers, and
 * it bounds what a slow consumer makes us hold per channel.
 */
export const defaultWireLimits: WireLimits = Object.freeze({
  maxFrameBytes: 1 * MiB + 4 * KiB,
  chunkBytes: 1 * MiB,
  initialWindowBytes: 2 * MiB,
  maxChannels: 256,
  socketHighWaterBytes: 1 * MiB,
  // Two credit grants' worth (a receiver grants every eighth of its 2 MiB
  // window), so bulk still flows without a pause per grant. Measured on a busy
  // 2-core machine, a link download (agent in its own process) with a terminal
  // channel open and an exec ping beside it: ping p99 170 ms with 2 MiB in
  // flight, 100 ms with 512 KiB, 58 ms with 256 KiB (which waits for each
  // grant), throughput the same within noise. The price: while a terminal is
  // open, one transfer moves at most this much per round trip (10 MiB/s at a
  // 50 ms RTT, against 40 with the whole window).
  interactiveBulkWindowBytes: 512 * KiB,
  // Measured: RunCommand("true") every 10 ms during a 512 MiB upload through
  // server and agent processes (2 busy cores), p50/p90/p99 29/54/74 ms with
  // the whole window in flight, 23/43/64 ms with this hold; the upload moved
  // 124-132 against 119-136 MiB/s.
  commandBulkHoldMs: 250,
  // A file upload's progress events are read as they come; 1024 is far past
  // what a reading consumer ever holds.
  maxQueuedEvents: 1024,
  // 2 MiB of credit in frames of 256 bytes or more fits; an agent's command
  // output chunks are pipe reads, mostly far larger.
  maxQueuedMessages: 8192,
  // Agents send one heartbeat per interval (30 s) and a few tunnel frames per
  // session: 100 at once and 20 a second leave room for bursts of tunnel churn.
  controlBurstFrames: 100,
  controlFramesPerSecond: 20,
});

/**
 * The WebSocket library's own hard cap (`ws` option `maxPayload`). Set above
 * maxFrameBytes so a moderately oversized frame reaches our codec and gets a
 * clear LinkError; `ws` still drops absurd ones (close 1009) before buffering them.
 */
export function wsMaxPayloadBytes(limits: WireLimits): number {
  return limits.maxFrameBytes * 2;
}

/** Throws GuruError("invalid") naming the first inconsistent limit. */
export function checkWireLimits(limits: WireLimits): WireLimits {
  const positive = [
    "maxFrameBytes",
    "chunkBytes",
    "initialWindowBytes",
    "maxChannels",
    "socketHighWaterBytes",
    "interactiveBulkWindowBytes",
    "commandBulkHoldMs",
    "maxQueuedEvents",
    "maxQueuedMessages",
    "controlBurstFrames",
    "controlFramesPerSecond",
  ] as const;
  for (const name of positive) {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new GuruError("invalid", `wire limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (limits.chunkBytes + frameOverheadBytes > limits.maxFrameBytes) {
    throw new GuruError(
      "invalid",
      `wire limit chunkBytes (${limits.chunkBytes}) plus ${frameOverheadBytes} bytes of framing must fit maxFrameBytes (${limits.maxFrameBytes})`,
    );
  }
  if (limits.initialWindowBytes > 0xffff_ffff || limits.maxFrameBytes > 0xffff_ffff) {
    throw new GuruError("invalid", "wire limits initialWindowBytes and maxFrameBytes travel as uint32 and must be below 4 GiB");
  }
  return limits;
}
