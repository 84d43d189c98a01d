// Memory and rate bounds against a hostile peer: events nobody reads, tiny
// data frames past a slow reader, control-frame floods, long error texts.
// Each refusal asserts the code and that the link's state is what it was.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FileReadInfoSchema } from "../../gen/guru/wire/v1/files_pb.js";
import { ChannelEventSchema, HeartbeatSchema, LinkErrorCode, LinkErrorSchema, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import { closeCodes } from "./close-codes.ts";
import { encodeDataFrame, makeFrame } from "./codec.ts";
import { linkedFrameSockets } from "./frame-socket.ts";
import { capturingLogger, drain, execOpen, rawPeer, waitFor } from "../../test/support/link-test-kit.ts";
import { createLink, maxPeerTextChars } from "./link.ts";
import { defaultWireLimits, type WireLimits } from "./limits.ts";
import { createTokenBucket } from "./token-bucket.ts";

function serverWithRawAgent(limits: Partial<WireLimits> = {}) {
  const [serverSocket, agentSocket] = linkedFrameSockets();
  const { logger, lines } = capturingLogger();
  const control: Frame[] = [];
  const link = createLink({ socket: serverSocket, role: "server", limits: { ...defaultWireLimits, ...limits }, logger, onControl: (f) => control.push(f) });
  return { link, peer: rawPeer(agentSocket), lines, control };
}

const eventFrame = (channelId: number) =>
  makeFrame(channelId, {
    case: "event",
    value: create(ChannelEventSchema, { event: { case: "fileReadInfo", value: create(FileReadInfoSchema, { size: 1n }) } }),
  });

function linkErrorOf(frames: Frame[]) {
  const frame = frames.find((f) => f.kind.case === "linkError");
  return frame?.kind.case === "linkError" ? frame.kind.value : undefined;
}

describe("link bounds", () => {
  it("events past maxQueuedEvents (16) unread → FLOW_CONTROL, 1002; the other channel ends with agent_offline", async () => {
    const { link, peer } = serverWithRawAgent({ maxQueuedEvents: 16 });
    const flooded = link.openChannel(execOpen("a"));
    const other = link.openChannel(execOpen("b"));
    for (let i = 0; i < 16; i++) peer.sendFrame(eventFrame(flooded.id));
    expect(peer.closed).toBeUndefined();
    expect(link.channelCount).toBe(2);
    peer.sendFrame(eventFrame(flooded.id));
    expect((await link.closed).code).toBe(closeCodes.protocolError);
    await waitFor(() => peer.closed !== undefined);
    expect(linkErrorOf(peer.received)).toMatchObject({ code: LinkErrorCode.FLOW_CONTROL, message: expect.stringMatching(/more than 16 events/) });
    expect((await drain(other)).last).toMatchObject({ type: "error", error: { kind: "agent_offline" } });
    expect(link.channelCount).toBe(0);
  });

  it("empty data frames count as events: they cost no credit", async () => {
    const { link, peer } = serverWithRawAgent({ maxQueuedEvents: 8 });
    const channel = link.openChannel(execOpen("a"));
    for (let i = 0; i < 9; i++) peer.sendBytes(encodeDataFrame(channel.id, new Uint8Array(0), 0n, 0));
    expect((await link.closed).code).toBe(closeCodes.protocolError);
    await waitFor(() => peer.closed !== undefined);
    expect(linkErrorOf(peer.received)?.code).toBe(LinkErrorCode.FLOW_CONTROL);
  });

  it("events read as they come never hit the bound (1000 events through maxQueuedEvents 16)", async () => {
    const { link, peer } = serverWithRawAgent({ maxQueuedEvents: 16 });
    const channel = link.openChannel(execOpen("a"));
    const iterator = channel.messages()[Symbol.asyncIterator]();
    for (let i = 0; i < 1000; i++) {
      peer.sendFrame(eventFrame(channel.id));
      expect((await iterator.next()).value?.type).toBe("event");
    }
    expect(peer.closed).toBeUndefined();
    expect(link.channelCount).toBe(1);
    link.close(closeCodes.normal, "done");
  });

  it("one-byte data frames past maxQueuedMessages (64) end that channel with too_large and a cancel; the link and other channels stay", async () => {
    const { link, peer, lines } = serverWithRawAgent({ maxQueuedMessages: 64 });
    const flooded = link.openChannel(execOpen("a"));
    const other = link.openChannel(execOpen("b"));
    for (let i = 0; i < 100; i++) peer.sendBytes(encodeDataFrame(flooded.id, new Uint8Array(1), 0n, 0));
    // Nobody reads until the channel has ended: the 65th frame ended it.
    await flooded.done;
    const out = await drain(flooded);
    expect(out.bytes).toBe(64);
    expect(out.last).toMatchObject({ type: "error", error: { kind: "too_large", message: expect.stringMatching(/more than 64 messages/) } });
    await waitFor(() => peer.received.some((f) => f.channelId === flooded.id && f.kind.case === "cancel"));
    expect(lines.some((l) => l.msg === "channel ended: too many unread messages from the peer")).toBe(true);
    expect(peer.closed).toBeUndefined();
    expect(link.channelCount).toBe(1);
    peer.sendBytes(encodeDataFrame(other.id, new Uint8Array(5), 0n, 0));
    const iterator = other.messages()[Symbol.asyncIterator]();
    const next = (await iterator.next()).value;
    expect(next?.type === "data" && next.data.byteLength).toBe(5);
    link.close(closeCodes.normal, "done");
  });

  it("control frames past the burst (10, then 5/s) → PROTOCOL_VIOLATION, 1008, with at most 10 heartbeat acks sent", async () => {
    const { link, peer } = serverWithRawAgent({ controlBurstFrames: 10, controlFramesPerSecond: 5 });
    const channel = link.openChannel(execOpen("a"));
    for (let i = 0; i < 500; i++) peer.sendFrame(makeFrame(0, { case: "heartbeat", value: create(HeartbeatSchema, { sequence: BigInt(i) }) }));
    expect((await link.closed).code).toBe(closeCodes.policyViolation);
    await waitFor(() => peer.closed !== undefined);
    expect(linkErrorOf(peer.received)).toMatchObject({ code: LinkErrorCode.PROTOCOL_VIOLATION, message: expect.stringMatching(/more than 10 control frames/) });
    expect(peer.received.filter((f) => f.kind.case === "heartbeatAck").length).toBeLessThanOrEqual(10);
    expect((await drain(channel)).last).toMatchObject({ type: "error", error: { kind: "agent_offline" } });
  });

  it("heartbeats at the agreed pace are never refused", async () => {
    const { link, peer } = serverWithRawAgent({ controlBurstFrames: 3, controlFramesPerSecond: 100 });
    for (let i = 0; i < 30; i++) {
      peer.sendFrame(makeFrame(0, { case: "heartbeat", value: create(HeartbeatSchema, { sequence: BigInt(i) }) }));
      await new Promise((r) => setTimeout(r, 15));
    }
    await waitFor(() => peer.received.filter((f) => f.kind.case === "heartbeatAck").length === 30);
    expect(peer.closed).toBeUndefined();
    link.close(closeCodes.normal, "done");
  });

  it(`cuts a peer's LinkError text to ${maxPeerTextChars} characters before logging it`, async () => {
    const { link, peer, lines, control } = serverWithRawAgent();
    const message = "x".repeat(500_000);
    peer.sendFrame(makeFrame(0, { case: "linkError", value: create(LinkErrorSchema, { code: LinkErrorCode.MALFORMED_FRAME, message }) }));
    await waitFor(() => control.length === 1);
    const line = lines.find((l) => l.msg.startsWith("peer reported a link error"));
    expect(line?.msg.length).toBeLessThan(maxPeerTextChars + 80);
    expect(line?.msg).toContain("(500000 characters)");
    expect(peer.closed).toBeUndefined();
    link.close(closeCodes.normal, "done");
  });
});

describe("token bucket", () => {
  it("allows the burst, then the refill rate", () => {
    let now = 0;
    const bucket = createTokenBucket({ capacity: 3, refillPerSecond: 2, now: () => now });
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    now = 499;
    expect(bucket.take()).toBe(false);
    now = 500;
    expect(bucket.take()).toBe(true);
    now = 100_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });
});
