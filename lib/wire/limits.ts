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
  const positive = ["maxFrameBytes", "chunkBytes", "initialWindowBytes", "maxChannels", "socketHighWaterBytes"] as const;
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
