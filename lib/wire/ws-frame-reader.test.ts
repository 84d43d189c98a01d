// The frame reader against frames built here byte by byte: messages come out
// whole however the bytes are split into reads (and though the caller
// overwrites its buffer after each read), every protocol violation closes with
// its RFC 6455 code, and pooled buffers come back only through release.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createFramePool } from "./frame-pool.ts";
import { WsFrameReader } from "./ws-frame-reader.ts";

/** A server frame: FIN and opcode, the shortest length form (or `lengthBytes`), never masked unless asked. */
function frame(opcode: number, payload: Uint8Array, o: { fin?: boolean; rsv?: number; mask?: boolean; lengthBytes?: 0 | 2 | 8 } = {}): Buffer {
  const n = payload.byteLength;
  const lengthBytes = o.lengthBytes ?? (n < 126 ? 0 : n < 0x10000 ? 2 : 8);
  const head = Buffer.alloc(2 + lengthBytes + (o.mask ? 4 : 0));
  head[0] = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  head[1] = (o.mask ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(n, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(n), 2);
  return Buffer.concat([head, payload]);
}

const closeFrame = (code: number, reason = "") => frame(0x8, Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]));

type Event =
  | { type: "message"; bytes: Buffer; isBinary: boolean; pooled: boolean }
  | { type: "ping"; payload: Buffer }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; code: number; message: string };

function reader(o: { maxPayloadBytes?: number; poolBytes?: number } = {}) {
  const events: Event[] = [];
  const releases: (() => void)[] = [];
  const pool = createFramePool(o.poolBytes ?? 64 * 1024, 4);
  const r = new WsFrameReader(
    {
      // Copies: the test reuses pooled buffers and must compare what arrived.
      message: (bytes, isBinary, release) => {
        events.push({ type: "message", bytes: Buffer.from(bytes), isBinary, pooled: release !== undefined });
        if (release) releases.push(release);
      },
      ping: (payload) => events.push({ type: "ping", payload: Buffer.from(payload) }),
      close: (code, reason) => events.push({ type: "close", code, reason }),
      protocolError: (code, message) => events.push({ type: "error", code, message }),
    },
    { maxPayloadBytes: o.maxPayloadBytes ?? 1024 * 1024, pool },
  );
  /** Feeds `bytes` cut at `cuts`, through one buffer overwritten with garbage after every read, as a socket's reused read buffer is. */
  const feed = (bytes: Buffer, cuts: number[] = []) => {
    const readBuffer = Buffer.alloc(bytes.byteLength + 1);
    const points = [...new Set([0, ...cuts.filter((c) => c > 0 && c < bytes.byteLength), bytes.byteLength])].sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i++) {
      const piece = bytes.subarray(points[i], points[i + 1]);
      piece.copy(readBuffer, 1);
      r.feed(readBuffer, 1, 1 + piece.byteLength);
      readBuffer.fill(0xee);
    }
  };
  return { r, events, releases, feed, pool };
}

describe("WsFrameReader", () => {
  it("delivers messages whole however the reads split them, fragments and pings between them included", () => {
    const message = fc.record({
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(125, 126, 65535, 65536, 70_000).map((n) => new Uint8Array(n).map((_, i) => (i * 31) & 0xff)),
      ),
      text: fc.boolean(),
      fragments: fc.integer({ min: 1, max: 4 }),
      pingBetween: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 40 }), (messages, cutSeeds) => {
        const { events, feed } = reader();
        const wire: Buffer[] = [];
        const expected: Event[] = [];
        for (const m of messages) {
          // Text must be UTF-8: ASCII letters of the payload's bytes.
          const payload = m.text ? Buffer.from(Array.from(m.payload, (b) => 0x61 + (b % 26))) : Buffer.from(m.payload);
          const size = Math.ceil(payload.byteLength / m.fragments);
          for (let f = 0; f < m.fragments; f++) {
            const piece = payload.subarray(f * size, f === m.fragments - 1 ? payload.byteLength : (f + 1) * size);
            wire.push(frame(f === 0 ? (m.text ? 0x1 : 0x2) : 0x0, piece, { fin: f === m.fragments - 1 }));
            if (m.pingBetween && f < m.fragments - 1) {
              wire.push(frame(0x9, Buffer.from(`p${f}`)));
              expected.push({ type: "ping", payload: Buffer.from(`p${f}`) });
            }
          }
          expected.push({ type: "message", bytes: payload, isBinary: !m.text, pooled: false });
        }
        const bytes = Buffer.concat(wire);
        feed(
          bytes,
          cutSeeds.map((s) => s % (bytes.byteLength + 1)),
        );
        expect(events.map((e) => (e.type === "message" ? { ...e, pooled: false } : e))).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it("reads 16-bit and 64-bit lengths even where a shorter form would do", () => {
    const { events, feed } = reader();
    feed(Buffer.concat([frame(0x2, Buffer.from("ab"), { lengthBytes: 2 }), frame(0x2, Buffer.from("cd"), { lengthBytes: 8 })]), [1, 2, 3, 5, 9]);
    expect(events.map((e) => e.type === "message" && e.bytes.toString())).toEqual(["ab", "cd"]);
  });

  it("takes large single-frame messages from the pool and reuses a buffer only after release", () => {
    const { events, releases, feed, pool } = reader({ poolBytes: 64 * 1024 });
    const taken: ArrayBufferLike[] = [];
    const take = pool.take.bind(pool);
    pool.take = (size) => {
      const got = take(size);
      taken.push(got.bytes.buffer);
      return got;
    };
    const payload = (n: number) => Buffer.alloc(40_000, n);
    feed(frame(0x2, payload(1)));
    feed(frame(0x2, payload(2)));
    // Nothing released yet: the second message must not share the first one's memory.
    expect(taken[1]).not.toBe(taken[0]);
    releases[0]();
    feed(frame(0x2, payload(3)));
    expect(taken[2]).toBe(taken[0]);
    expect(events.map((e) => e.type === "message" && [e.bytes[0], e.pooled])).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
    // Small and fragmented messages are plain allocations, never released.
    feed(Buffer.concat([frame(0x2, Buffer.from("small")), frame(0x2, payload(4), { fin: false }), frame(0x0, payload(5))]));
    expect(events.slice(3).map((e) => e.type === "message" && e.pooled)).toEqual([false, false]);
  });

  it("reports the server's close frame, 1005 when it names no code, and reads nothing after it", () => {
    const a = reader();
    a.feed(Buffer.concat([closeFrame(4003, "revoked ✓"), frame(0x2, Buffer.from("late"))]));
    expect(a.events).toEqual([{ type: "close", code: 4003, reason: "revoked ✓" }]);
    const b = reader();
    b.feed(frame(0x8, Buffer.alloc(0)));
    expect(b.events).toEqual([{ type: "close", code: 1005, reason: "" }]);
  });

  const violations: [string, Buffer, number][] = [
    ["RSV bits without an extension", frame(0x2, Buffer.from("x"), { rsv: 4 }), 1002],
    ["a masked frame from the server", frame(0x2, Buffer.from("x"), { mask: true }), 1002],
    ["an unknown data opcode", frame(0x3, Buffer.from("x")), 1002],
    ["an unknown control opcode", frame(0xb, Buffer.from("x")), 1002],
    ["a fragmented control frame", frame(0x9, Buffer.from("x"), { fin: false }), 1002],
    ["a control frame over 125 bytes", frame(0x9, Buffer.alloc(126)), 1002],
    ["a continuation with nothing to continue", frame(0x0, Buffer.from("x")), 1002],
    ["a new message inside a fragmented one", Buffer.concat([frame(0x2, Buffer.from("a"), { fin: false }), frame(0x2, Buffer.from("b"))]), 1002],
    ["a close frame of one byte", frame(0x8, Buffer.from([3])), 1002],
    ["a close code no one may send", closeFrame(1005), 1002],
    ["a close reason that is not UTF-8", Buffer.concat([frame(0x8, Buffer.from([0x03, 0xe8, 0xc3, 0x28]))]), 1007],
    ["a text message that is not UTF-8", frame(0x1, Buffer.from([0xc3, 0x28])), 1007],
    ["a 64-bit length with its top bit set", Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), 1002],
    // Refused from the header alone: the payload is never waited for.
    ["a message over maxPayloadBytes", Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 1]), 1009],
    ["fragments that add up past maxPayloadBytes", Buffer.concat([frame(0x2, Buffer.alloc(700_000), { fin: false }), frame(0x0, Buffer.alloc(400_000))]), 1009],
  ];
  for (const [what, bytes, code] of violations) {
    it(`closes with ${code} on ${what}, once, and reads nothing after`, () => {
      const { events, feed } = reader();
      feed(Buffer.concat([bytes, frame(0x2, Buffer.from("after"))]));
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: "error", code });
      expect((events[0] as { message: string }).message.length).toBeGreaterThan(10);
    });
  }

  it("stops reading when told to (the connection is closing)", () => {
    const { r, events, feed } = reader();
    feed(frame(0x2, Buffer.from("one")));
    r.stop();
    feed(frame(0x2, Buffer.from("two")));
    expect(events).toHaveLength(1);
  });
});
