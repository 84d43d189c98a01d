import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { OutputStream } from "../../gen/guru/wire/v1/exec_pb.js";
import { ChannelDataSchema, FrameSchema, HeartbeatAckSchema, HeartbeatSchema, HelloSchema, LinkErrorCode } from "../../gen/guru/wire/v1/wire_pb.js";
import { closeCodeName, closeCodes, shouldReconnect } from "./close-codes.ts";
import { decodeFrame, encodeDataFrame, encodeFrame, encodeHeartbeatAck, heartbeatSequenceOf, makeFrame, WireProtocolError } from "./codec.ts";
import { defaultWireLimits } from "./limits.ts";

const max = defaultWireLimits.maxFrameBytes;

function rejection(fn: () => unknown): WireProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WireProtocolError);
    return err as WireProtocolError;
  }
  throw new Error("expected a WireProtocolError");
}

describe("codec", () => {
  it("round-trips a control frame", () => {
    const frame = makeFrame(0, {
      case: "hello",
      value: create(HelloSchema, { agentVersion: "1.2.3", capabilities: ["exec", "files"], initialWindowBytes: 2 << 20, maxFrameBytes: 1 << 20 }),
    });
    const decoded = decodeFrame(encodeFrame(frame), max);
    expect(decoded.channelId).toBe(0);
    expect(decoded.kind.case).toBe("hello");
    if (decoded.kind.case !== "hello") throw new Error("unreachable");
    expect(decoded.kind.value.agentVersion).toBe("1.2.3");
    expect(decoded.kind.value.capabilities).toEqual(["exec", "files"]);
    expect(decoded.kind.value.initialWindowBytes).toBe(2 << 20);
  });

  it("encodes data frames byte-for-byte like the generic encoder", () => {
    const payloads = [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(200), new Uint8Array(256 * 1024).fill(7)];
    const offsets = [0n, 1n, 127n, 128n, 300_000n, 2n ** 40n, 2n ** 63n + 5n, 2n ** 64n - 1n];
    const ids = [0, 1, 127, 128, 0xffff_ffff];
    const streams = [OutputStream.UNSPECIFIED, OutputStream.STDOUT, OutputStream.STDERR];
    for (const data of payloads)
      for (const offset of offsets)
        for (const channelId of ids)
          for (const stream of streams) {
            const generic = toBinary(
              FrameSchema,
              create(FrameSchema, { channelId, kind: { case: "data", value: create(ChannelDataSchema, { data, offset, stream }) } }),
            );
            expect(Buffer.from(encodeDataFrame(channelId, data, offset, stream)).equals(generic)).toBe(true);
          }
  });

  it("decodes a data frame without copying the payload out of the message", () => {
    const data = new Uint8Array(1000).map((_, i) => i % 251);
    const decoded = decodeFrame(encodeDataFrame(9, data, 4096n, OutputStream.STDERR), max);
    if (decoded.kind.case !== "data") throw new Error("expected data");
    expect(decoded.channelId).toBe(9);
    expect(Buffer.from(decoded.kind.value.data).equals(data)).toBe(true);
    expect(decoded.kind.value.offset).toBe(4096n);
    expect(decoded.kind.value.stream).toBe(OutputStream.STDERR);
  });

  it("refuses a frame over maxFrameBytes before parsing it (FRAME_TOO_LARGE, 1009)", () => {
    const bytes = encodeDataFrame(1, new Uint8Array(2000), 0n, 0);
    const err = rejection(() => decodeFrame(bytes, 1000));
    expect(err.code).toBe(LinkErrorCode.FRAME_TOO_LARGE);
    expect(err.closeCode).toBe(closeCodes.frameTooLarge);
    expect(err.message).toMatch(/exceeds maxFrameBytes 1000/);
    // Exactly at the limit is fine.
    expect(decodeFrame(bytes, bytes.byteLength).kind.case).toBe("data");
  });

  it("refuses bytes that are not a Frame (MALFORMED_FRAME, 1002)", () => {
    for (const garbage of [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // overlong varint
      new Uint8Array([0xaa, 0x01, 0x10, 0x0a]), // data field claims 16 bytes, has 2
      new Uint8Array([0x0f]), // wire type 7 does not exist
      new TextEncoder().encode("GET / HTTP/1.1\r\n"),
    ]) {
      const err = rejection(() => decodeFrame(garbage, max));
      expect(err.code).toBe(LinkErrorCode.MALFORMED_FRAME);
      expect(err.closeCode).toBe(closeCodes.protocolError);
    }
  });

  it("refuses a frame with no kind it knows (UNKNOWN_FRAME_KIND, 1002)", () => {
    // Field 99 (varint) from a newer peer, on channel 5; and an empty message.
    for (const bytes of [new Uint8Array([0x08, 0x05, 0x98, 0x06, 0x01]), new Uint8Array(0)]) {
      const err = rejection(() => decodeFrame(bytes, max));
      expect(err.code).toBe(LinkErrorCode.UNKNOWN_FRAME_KIND);
      expect(err.closeCode).toBe(closeCodes.protocolError);
    }
  });
});

describe("close codes", () => {
  it("names codes and says when an agent should redial", () => {
    expect(closeCodes.replaced).toBe(4000);
    expect(closeCodeName(4001)).toBe("heartbeatTimeout");
    expect(closeCodeName(4999)).toBe("unknown(4999)");
    expect(shouldReconnect(closeCodes.heartbeatTimeout)).toBe(true);
    expect(shouldReconnect(closeCodes.goingAway)).toBe(true);
    expect(shouldReconnect(closeCodes.revoked)).toBe(false);
    expect(shouldReconnect(closeCodes.replaced)).toBe(false);
  });
});

describe("codec: heartbeat fast path", () => {
  const sequences = [0n, 1n, 127n, 128n, 300n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];

  it("reads the sequence of every Heartbeat frame the generic encoder writes", () => {
    for (const sequence of sequences) {
      const bytes = encodeFrame(makeFrame(0, { case: "heartbeat", value: create(HeartbeatSchema, { sequence }) }));
      expect(heartbeatSequenceOf(bytes)).toBe(sequence);
    }
  });

  it("writes HeartbeatAck frames byte-for-byte like the generic encoder", () => {
    for (const sequence of sequences) {
      const generic = encodeFrame(makeFrame(0, { case: "heartbeatAck", value: create(HeartbeatAckSchema, { sequence }) }));
      expect(Buffer.from(encodeHeartbeatAck(sequence))).toEqual(Buffer.from(generic));
    }
  });

  it("leaves everything else to the generic decoder", () => {
    const onChannel = encodeFrame(makeFrame(3, { case: "heartbeat", value: create(HeartbeatSchema, { sequence: 5n }) }));
    const ack = encodeFrame(makeFrame(0, { case: "heartbeatAck", value: create(HeartbeatAckSchema, { sequence: 5n }) }));
    const beat = encodeFrame(makeFrame(0, { case: "heartbeat", value: create(HeartbeatSchema, { sequence: 5n }) }));
    const trailing = Uint8Array.of(...beat, 0x08, 0x01);
    const truncated = Uint8Array.of(tagOf(beat), 2, 0x08, 0x85);
    const tooLong = Uint8Array.of(tagOf(beat), 11, 0x08, ...new Array(10).fill(0xff));
    for (const bytes of [onChannel, ack, trailing, truncated, tooLong, new Uint8Array(0), Uint8Array.of(0x62)]) {
      expect(heartbeatSequenceOf(bytes)).toBeUndefined();
    }
  });
});

const tagOf = (bytes: Uint8Array) => bytes[0];
