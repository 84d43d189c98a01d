// A peer that sends garbage: every case answers with a LinkError frame (code +
// clear message), a warn log line and the matching close code; open channels
// end with agent_offline; onControl never sees the bad frame; no exception escapes.
import { create } from "@bufbuild/protobuf";
import { ConsentRequestSchema } from "../../gen/guru/wire/v1/consent_pb.js";
import { describe, expect, it } from "vitest";
import {
  ChannelCreditSchema,
  ChannelOpenSchema,
  ChannelResultSchema,
  HelloAckSchema,
  HelloSchema,
  LinkErrorCode,
  type Frame,
} from "../../gen/guru/wire/v1/wire_pb.js";
import { closeCodes } from "./close-codes.ts";
import { encodeDataFrame, makeFrame } from "./codec.ts";
import { linkedFrameSockets } from "./frame-socket.ts";
import { capturingLogger, drain, execOpen, rawPeer, waitFor } from "../../test/support/link-test-kit.ts";
import { createLink } from "./link.ts";
import { defaultWireLimits } from "./limits.ts";

function serverWithRawAgent(limits = defaultWireLimits) {
  const [serverSocket, agentSocket] = linkedFrameSockets();
  const { logger, lines } = capturingLogger();
  const control: Frame[] = [];
  const link = createLink({ socket: serverSocket, role: "server", limits, logger, onControl: (f) => control.push(f) });
  const peer = rawPeer(agentSocket);
  return { link, peer, lines, control, serverSocket };
}

async function expectLinkFailure(setup: ReturnType<typeof serverWithRawAgent>, code: LinkErrorCode, closeCode: number, message: RegExp): Promise<void> {
  const { link, peer, lines, control } = setup;
  const closed = await link.closed;
  expect(closed.code).toBe(closeCode);
  await waitFor(() => peer.closed !== undefined);
  expect(peer.closed?.code).toBe(closeCode);
  const linkError = peer.received.find((f) => f.kind.case === "linkError");
  if (linkError?.kind.case !== "linkError") throw new Error("expected a LinkError frame before the close");
  expect(linkError.kind.value.code).toBe(code);
  expect(linkError.kind.value.message).toMatch(message);
  expect(lines.some((l) => l.level === 40 && l.linkErrorCode === LinkErrorCode[code])).toBe(true);
  expect(control).toEqual([]);
  expect(link.channelCount).toBe(0);
}

describe("link: bad input from the peer", () => {
  it("malformed bytes → MALFORMED_FRAME, 1002, and open channels end with agent_offline", async () => {
    const setup = serverWithRawAgent();
    const channel = setup.link.openChannel(execOpen("x"));
    setup.peer.sendBytes(new Uint8Array([0xff, 0xff, 0xff]));
    await expectLinkFailure(setup, LinkErrorCode.MALFORMED_FRAME, closeCodes.protocolError, /not a valid guru\.wire\.v1\.Frame/);
    expect((await drain(channel)).last).toMatchObject({ type: "error", error: { kind: "agent_offline" } });
  });

  it("oversized frame → FRAME_TOO_LARGE, 1009", async () => {
    const setup = serverWithRawAgent({ ...defaultWireLimits, maxFrameBytes: 64 * 1024, chunkBytes: 32 * 1024 });
    setup.peer.sendBytes(encodeDataFrame(1, new Uint8Array(100 * 1024), 0n, 0));
    await expectLinkFailure(setup, LinkErrorCode.FRAME_TOO_LARGE, closeCodes.frameTooLarge, /exceeds maxFrameBytes 65536/);
  });

  it("unknown frame kind (newer peer) → UNKNOWN_FRAME_KIND, 1002", async () => {
    const setup = serverWithRawAgent();
    setup.peer.sendBytes(new Uint8Array([0x98, 0x06, 0x01])); // field 99
    await expectLinkFailure(setup, LinkErrorCode.UNKNOWN_FRAME_KIND, closeCodes.protocolError, /no kind this side knows/);
  });

  it("a text message → MALFORMED_FRAME, 1003", async () => {
    const setup = serverWithRawAgent();
    setup.serverSocket.inject(new TextEncoder().encode("hello?"), false);
    await expectLinkFailure(setup, LinkErrorCode.MALFORMED_FRAME, closeCodes.unsupportedData, /text message/);
  });

  it("data for a channel never opened → UNKNOWN_CHANNEL", async () => {
    const setup = serverWithRawAgent();
    setup.peer.sendBytes(encodeDataFrame(41, new Uint8Array(10), 0n, 0));
    await expectLinkFailure(setup, LinkErrorCode.UNKNOWN_CHANNEL, closeCodes.protocolError, /channel 41, which was never opened/);
  });

  it("a ChannelOpen from the agent → PROTOCOL_VIOLATION", async () => {
    const setup = serverWithRawAgent();
    setup.peer.sendFrame(makeFrame(2, { case: "open", value: create(ChannelOpenSchema, {}) }));
    await expectLinkFailure(setup, LinkErrorCode.PROTOCOL_VIOLATION, closeCodes.protocolError, /agent may not open channels/);
  });

  it("a channel frame on channel 0, and a HelloAck sent to the server → PROTOCOL_VIOLATION", async () => {
    const first = serverWithRawAgent();
    first.peer.sendFrame(makeFrame(0, { case: "credit", value: create(ChannelCreditSchema, { bytes: 5 }) }));
    await expectLinkFailure(first, LinkErrorCode.PROTOCOL_VIOLATION, closeCodes.protocolError, /needs a channel id/);
    const second = serverWithRawAgent();
    second.peer.sendFrame(makeFrame(0, { case: "helloAck", value: create(HelloAckSchema, {}) }));
    await expectLinkFailure(second, LinkErrorCode.PROTOCOL_VIOLATION, closeCodes.protocolError, /helloAck frame may not be sent to the server/);
  });

  it("a consent request sent to the server → PROTOCOL_VIOLATION: only the server asks", async () => {
    const setup = serverWithRawAgent();
    setup.peer.sendFrame(makeFrame(0, { case: "consentAsk", value: create(ConsentRequestSchema, { sessionId: "s1" }) }));
    await expectLinkFailure(setup, LinkErrorCode.PROTOCOL_VIOLATION, closeCodes.protocolError, /consentAsk frame may not be sent to the server/);
  });

  it("data beyond the granted credit → FLOW_CONTROL", async () => {
    const setup = serverWithRawAgent({ ...defaultWireLimits, initialWindowBytes: 64 * 1024 });
    setup.link.openChannel(execOpen("x"));
    setup.peer.sendBytes(encodeDataFrame(1, new Uint8Array(60 * 1024), 0n, 0));
    setup.peer.sendBytes(encodeDataFrame(1, new Uint8Array(5 * 1024), 0n, 0));
    await expectLinkFailure(setup, LinkErrorCode.FLOW_CONTROL, closeCodes.protocolError, /exceed the 4096 bytes of credit left/);
  });

  it("a credit grant past 2^31-1 → FLOW_CONTROL", async () => {
    const setup = serverWithRawAgent();
    setup.link.openChannel(execOpen("x"));
    setup.peer.sendFrame(makeFrame(1, { case: "credit", value: create(ChannelCreditSchema, { bytes: 0xffff_ffff }) }));
    await expectLinkFailure(setup, LinkErrorCode.FLOW_CONTROL, closeCodes.protocolError, /2\^31-1/);
  });

  it("ignores late frames for a channel that already ended (a race, not a fault)", async () => {
    const { link, peer, lines, control } = serverWithRawAgent();
    const channel = link.openChannel(execOpen("x"));
    peer.sendFrame(makeFrame(1, { case: "result", value: create(ChannelResultSchema, {}) }));
    peer.sendBytes(encodeDataFrame(1, new Uint8Array(10), 0n, 0));
    peer.sendFrame(makeFrame(1, { case: "credit", value: create(ChannelCreditSchema, { bytes: 5 }) }));
    peer.sendFrame(makeFrame(0, { case: "hello", value: create(HelloSchema, { agentVersion: "after" }) }));
    await waitFor(() => control.length === 1);
    expect((await drain(channel)).last?.type).toBe("result");
    expect(peer.closed).toBeUndefined();
    expect(lines.filter((l) => l.msg === "frame for an ended channel ignored")).toHaveLength(2);
    link.close(closeCodes.normal, "done");
  });

  it("a peer's LinkError reaches onControl and the log, without closing from our side", async () => {
    const { link, peer, lines, control } = serverWithRawAgent();
    peer.sendFrame(
      makeFrame(0, { case: "linkError", value: { $typeName: "guru.wire.v1.LinkError", code: LinkErrorCode.FLOW_CONTROL, message: "you overran" } }),
    );
    await waitFor(() => control.length === 1);
    expect(lines.some((l) => l.msg.includes("you overran"))).toBe(true);
    expect(link.channelCount).toBe(0);
    expect(peer.closed).toBeUndefined();
    link.close(closeCodes.normal, "done");
  });
});
