// fast-check arbitraries for what a hostile agent can put on the wire: raw
// bytes, and Frames that decode fine but carry hostile values (limits at 0,
// 1 and 2^32-1, huge strings, unknown enum values, channel ids nobody opened).
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { ExecRequestSchema, ExecResultSchema } from "../../gen/guru/wire/v1/exec_pb.js";
import { FileWriteProgressSchema } from "../../gen/guru/wire/v1/files_pb.js";
import {
  ChannelCancelSchema,
  ChannelCreditSchema,
  ChannelDataSchema,
  ChannelErrorSchema,
  ChannelEventSchema,
  ChannelOpenSchema,
  ChannelResultSchema,
  FrameSchema,
  HeartbeatAckSchema,
  HeartbeatSchema,
  HelloAckSchema,
  HelloSchema,
  LinkErrorSchema,
  TunnelClosedSchema,
  TunnelCloseSchema,
  TunnelOpenSchema,
  TunnelReadySchema,
  type Frame,
} from "../../gen/guru/wire/v1/wire_pb.js";
import { encodeFrame } from "../../lib/wire/codec.ts";

const u32 = fc.oneof(fc.constantFrom(0, 1, 2, 64, 65, 16_384, 0x7fff_ffff, 0xffff_ffff), fc.nat({ max: 0xffff_ffff }));
const u64 = fc.oneof(fc.constantFrom(0n, 1n, 2n ** 63n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
const enumValue = fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(-1, 0x7fff_ffff));
const text = fc.oneof(
  { weight: 8, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.nat({ max: 300_000 }).map((n) => "x".repeat(n)) },
);
const channelId = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 0xffff_ffff), fc.nat({ max: 0xffff_ffff }));

const helloKind = fc
  .record({
    agentVersion: text,
    inventory: fc.record({ hostname: text, os: text, osRelease: text, arch: text }),
    capabilities: fc.array(text, { maxLength: 60 }),
    initialWindowBytes: u32,
    maxFrameBytes: u32,
  })
  .map((v) => ({ case: "hello" as const, value: create(HelloSchema, v) }));

const kind: fc.Arbitrary<Frame["kind"]> = fc.oneof(
  helloKind,
  fc
    .record({ agentId: text, serverVersion: text, heartbeatIntervalMs: u32, heartbeatDeadlineMs: u32, initialWindowBytes: u32, maxFrameBytes: u32 })
    .map((v) => ({ case: "helloAck" as const, value: create(HelloAckSchema, v) })),
  u64.map((sequence) => ({ case: "heartbeat" as const, value: create(HeartbeatSchema, { sequence }) })),
  u64.map((sequence) => ({ case: "heartbeatAck" as const, value: create(HeartbeatAckSchema, { sequence }) })),
  fc.record({ sessionId: text, technicianId: text, technicianName: text }).map((v) => ({ case: "tunnelOpen" as const, value: create(TunnelOpenSchema, v) })),
  fc.record({ sessionId: text, refusedReason: text }).map((v) => ({ case: "tunnelReady" as const, value: create(TunnelReadySchema, v) })),
  fc.record({ sessionId: text, reason: text }).map((v) => ({ case: "tunnelClose" as const, value: create(TunnelCloseSchema, v) })),
  text.map((sessionId) => ({ case: "tunnelClosed" as const, value: create(TunnelClosedSchema, { sessionId }) })),
  fc.record({ code: enumValue, message: text }).map((v) => ({ case: "linkError" as const, value: create(LinkErrorSchema, v) })),
  fc
    .record({ command: text, timeoutMs: u32, maxOutputBytes: u64 })
    .map((v) => ({ case: "open" as const, value: create(ChannelOpenSchema, { request: { case: "exec", value: create(ExecRequestSchema, v) } }) })),
  fc
    .record({ data: fc.uint8Array({ maxLength: 4096 }), offset: u64, stream: enumValue })
    .map((v) => ({ case: "data" as const, value: create(ChannelDataSchema, v) })),
  u32.map((bytes) => ({ case: "credit" as const, value: create(ChannelCreditSchema, { bytes }) })),
  u64.map((committedOffset) => ({
    case: "event" as const,
    value: create(ChannelEventSchema, { event: { case: "fileWriteProgress", value: create(FileWriteProgressSchema, { committedOffset }) } }),
  })),
  fc
    .record({ exitCode: fc.integer(), signal: text, reason: enumValue, stdoutBytes: u64 })
    .map((v) => ({ case: "result" as const, value: create(ChannelResultSchema, { result: { case: "exec", value: create(ExecResultSchema, v) } }) })),
  fc.record({ kind: enumValue, message: text }).map((v) => ({ case: "error" as const, value: create(ChannelErrorSchema, v) })),
  text.map((reason) => ({ case: "cancel" as const, value: create(ChannelCancelSchema, { reason }) })),
);

/** A Hello on channel 0 with hostile values (the first frame a server reads from an agent), encoded. */
export const hostileHello: fc.Arbitrary<Uint8Array> = helloKind.map((kind) => encodeFrame(create(FrameSchema, { channelId: 0, kind })));

/** A structurally valid Frame with hostile values, encoded. */
export const hostileFrame: fc.Arbitrary<Uint8Array> = fc.record({ channelId, kind }).map((f) => encodeFrame(create(FrameSchema, f)));

/** Arbitrary bytes: mostly garbage, sometimes a valid frame with garbage appended. */
export const hostileBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 4096 }),
  fc.tuple(hostileFrame, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([frame, tail]) => Buffer.concat([frame, tail])),
);
