// Frames the agent's client masks in place must reach a `ws` server
// byte-identical, at every length class of the WebSocket header (7-bit,
// 16-bit, 64-bit), in the order they were sent.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultWireLimits } from "./limits.ts";
import { maskedBinaryHeader } from "./masked-frames.ts";
import { openAgentPair, type AgentPair } from "../../test/support/ws-pair.ts";

let pair: AgentPair;
const received: Buffer[] = [];
let onReceived: (() => void) | undefined;

beforeAll(async () => {
  pair = await openAgentPair(defaultWireLimits);
  pair.server.on("message", (data: Buffer) => {
    received.push(data);
    onReceived?.();
  });
});

afterAll(async () => {
  await pair.close();
});

function send(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => pair.agent.send(bytes, (err) => (err ? reject(err) : resolve())));
}

async function receivedCount(n: number): Promise<void> {
  while (received.length < n) await new Promise<void>((resolve) => (onReceived = resolve));
}

describe("masked frames written in place", () => {
  it("writes headers of each length class with the mask bit and a key", () => {
    expect([...maskedBinaryHeader(0).subarray(0, 2)]).toEqual([0x82, 0x80]);
    expect([...maskedBinaryHeader(125).subarray(0, 2)]).toEqual([0x82, 0x80 | 125]);
    expect([...maskedBinaryHeader(126).subarray(0, 4)]).toEqual([0x82, 0x80 | 126, 0, 126]);
    expect([...maskedBinaryHeader(65536).subarray(0, 10)]).toEqual([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    expect(maskedBinaryHeader(65536).byteLength).toBe(14);
  });

  it("delivers any payload byte-identical, and masks the sender's buffer (no copy was made)", async () => {
    const boundaries = fc.constantFrom(0, 1, 125, 126, 127, 65535, 65536, 65537, 1024 * 1024 + 3);
    await fc.assert(
      fc.asyncProperty(fc.oneof(boundaries, fc.integer({ min: 0, max: 200_000 })), fc.integer({ min: 0, max: 255 }), async (length, seed) => {
        const payload = Buffer.alloc(length, seed).map((b, i) => (b + i * 7) & 0xff);
        const original = Buffer.from(payload);
        const before = received.length;
        await send(payload);
        await receivedCount(before + 1);
        expect(received[before].equals(original)).toBe(true);
        // A zero key (one in 2^32) would leave the bytes as they were; 16 bytes make that moot.
        if (length >= 16) expect(Buffer.from(payload).equals(original)).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it("keeps the order of frames, with the answers to the server's pings between them", async () => {
    const before = received.length;
    const expected: string[] = [];
    let pongs = 0;
    pair.server.on("pong", () => pongs++);
    for (let i = 0; i < 20; i++) {
      const text = `frame ${i} ${"x".repeat(i * 1000)}`;
      expected.push(text);
      if (i % 3 === 0) pair.server.ping(Buffer.from(`ping ${i}`));
      void send(Buffer.from(text));
    }
    await receivedCount(before + 20);
    expect(received.slice(before).map((b) => b.toString())).toEqual(expected);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pongs).toBe(7);
  });
});
