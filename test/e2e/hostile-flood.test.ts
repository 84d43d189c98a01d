// An agent with a valid key that floods the server: ChannelEvent frames on a
// command's channel, heartbeats on the control channel. A real `guru server`
// process; its memory is read from /proc before and after.
import { create } from "@bufbuild/protobuf";
import { expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { FileWriteProgressSchema } from "../../gen/guru/wire/v1/files_pb.js";
import { ChannelEventSchema, FrameSchema, HeartbeatSchema, LinkErrorCode, TunnelReadySchema, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import { decodeFrame, encodeFrame } from "../../lib/wire/codec.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { defaultWireLimits } from "../../lib/wire/limits.ts";
import { describeDatabases } from "../support/databases.ts";
import { errorOf } from "../support/rpc-errors.ts";
import { rawUpgrade, waitFor, type RawAgent } from "../support/raw-agent.ts";
import { useServerProcess } from "../support/server-process-fixture.ts";

const MiB = 1024 * 1024;
const floodEvents = 200_000;
// PGlite in the server process moves its RSS by tens of MiB on its own; the flood itself is 2.4 MB of frames.
const rssBoundBytes = 96 * MiB;

/** A raw agent that says Hello, answers TunnelOpen, and hands each channel the server opens to `onOpen`. */
async function rawAgentWithTunnels(url: string, key: string, onOpen: (raw: RawAgent, channelId: number) => void): Promise<RawAgent> {
  const raw = (await rawUpgrade(url, { key })) as RawAgent;
  raw.ws.on("message", (data: Buffer) => {
    let frame: Frame;
    try {
      frame = decodeFrame(new Uint8Array(data), 64 * MiB);
    } catch {
      return;
    }
    if (frame.kind.case === "tunnelOpen") raw.send({ case: "tunnelReady", value: create(TunnelReadySchema, { sessionId: frame.kind.value.sessionId }) });
    else if (frame.kind.case === "open") onOpen(raw, frame.channelId);
  });
  raw.sendHello();
  await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 5000, "HelloAck");
  return raw;
}

/** Sends without letting our own socket buffer grow past a few MiB. */
async function sendPaced(raw: RawAgent, frames: number, frameAt: (i: number) => Uint8Array): Promise<number> {
  let sent = 0;
  while (sent < frames && raw.ws.readyState === raw.ws.OPEN) {
    raw.ws.send(frameAt(sent++));
    if (raw.ws.bufferedAmount > 4 * MiB) await new Promise((r) => setTimeout(r, 1));
  }
  return sent;
}

describeDatabases("hostile floods against a server process", (kind) => {
  const f = useServerProcess(kind);

  it(`${floodEvents} ChannelEvent frames on a command's channel: the link closes once ${defaultWireLimits.maxQueuedEvents} are unread (1002, FLOW_CONTROL), server RSS grows less than ${rssBoundBytes / MiB} MiB, the command fails unavailable, the tunnel is closed, another agent keeps working`, async () => {
    const { agentId, agentKey } = await f.api.admin.enrollAgent({ name: "event-flooder" });
    let flood: Promise<number> | undefined;
    const raw = await rawAgentWithTunnels(f.url, agentKey, (agent, channelId) => {
      const bytes = encodeFrame(
        create(FrameSchema, {
          channelId,
          kind: {
            case: "event",
            value: create(ChannelEventSchema, { event: { case: "fileWriteProgress", value: create(FileWriteProgressSchema, { committedOffset: 1n }) } }),
          },
        }),
      );
      flood = sendPaced(agent, floodEvents, () => bytes);
    });
    const { sessionId } = await f.api.sessions.openTunnel({ agentId });
    const before = await f.rssBytes();
    let peak = before;
    const sampler = setInterval(
      () =>
        void f.rssBytes().then(
          (rss) => (peak = Math.max(peak, rss)),
          () => undefined,
        ),
      20,
    );
    try {
      const err = await errorOf(f.api.exec.runCommand({ sessionId, command: "anything" }));
      expect(err.code).toBe(Code.Unavailable);
      expect(err.message).toMatch(/more than 1024 events/);
      const closed = await raw.closed;
      expect(closed.code).toBe(closeCodes.protocolError);
      const linkError = raw.frames.find((fr) => fr.kind.case === "linkError");
      expect(linkError?.kind.case === "linkError" && linkError.kind.value.code).toBe(LinkErrorCode.FLOW_CONTROL);
      const sent = await flood;
      process.stdout.write(`[${kind}] the flooder sent ${sent} event frames before its link closed\n`);
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - before;
    process.stdout.write(
      `[${kind}] server RSS ${Math.round(before / MiB)} MiB before the flood, peak ${Math.round(peak / MiB)} MiB (growth ${(growth / MiB).toFixed(1)} MiB)\n`,
    );
    expect(growth).toBeLessThan(rssBoundBytes);
    expect(f.server.child.exitCode).toBeNull();
    const { session } = await f.api.sessions.getTunnelStatus({ sessionId });
    expect(session?.status).toBe(SessionStatus.CLOSED);
    expect((await f.api.agents.listAgents({ nameContains: "event-flooder" })).agents[0]).toMatchObject({ agentId, online: false });
    await f.runThroughHealthyAgent("healthy-after-events");
  });

  it(`a heartbeat flood closes that link after at most ${defaultWireLimits.controlBurstFrames} frames plus ${defaultWireLimits.controlFramesPerSecond}/s (1008, PROTOCOL_VIOLATION); another agent keeps working`, async () => {
    const { agentId, agentKey } = await f.api.admin.enrollAgent({ name: "heartbeat-flooder" });
    const raw = await rawAgentWithTunnels(f.url, agentKey, () => undefined);
    const started = performance.now();
    const heartbeat = encodeFrame(create(FrameSchema, { channelId: 0, kind: { case: "heartbeat", value: create(HeartbeatSchema, { sequence: 1n }) } }));
    await sendPaced(raw, 100_000, () => heartbeat);
    const closed = await raw.closed;
    const elapsedS = (performance.now() - started) / 1000;
    expect(closed.code).toBe(closeCodes.policyViolation);
    const linkError = raw.frames.find((fr) => fr.kind.case === "linkError");
    expect(linkError?.kind.case === "linkError" && linkError.kind.value.code).toBe(LinkErrorCode.PROTOCOL_VIOLATION);
    const acks = raw.frames.filter((fr) => fr.kind.case === "heartbeatAck").length;
    expect(acks).toBeLessThanOrEqual(defaultWireLimits.controlBurstFrames + Math.ceil(elapsedS * defaultWireLimits.controlFramesPerSecond) + 1);
    await waitFor(async () => !(await f.api.agents.listAgents({ nameContains: "heartbeat-flooder" })).agents[0].online, 5000, "flooder offline");
    expect((await f.api.agents.listAgents({ nameContains: "heartbeat-flooder" })).agents[0]).toMatchObject({ agentId, online: false });
    await f.runThroughHealthyAgent("healthy-after-flood");
  });
});
