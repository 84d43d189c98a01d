// The agent endpoint under bad input: refused upgrades, garbage and oversized
// frames, silence after the upgrade. None of it disturbs other agents.
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, expect, it, onTestFinished } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { ChannelDataSchema, FrameSchema, HeartbeatSchema, LinkErrorCode } from "../../gen/guru/wire/v1/wire_pb.js";
import { encodeFrame } from "../../lib/wire/codec.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { rawUpgrade, waitFor, type RawAgent } from "../support/raw-agent.ts";

describeDatabases("agent link", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { handshakeTimeoutMs: 500 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses upgrades without a key, with a wrong or revoked key, or the wrong subprotocol", async () => {
    const { agentId, agentKey } = await t.enrollAgent("gate-1");
    expect(await rawUpgrade(t.url, {})).toEqual({ status: 401, body: expect.stringContaining("missing agent key") });
    expect(await rawUpgrade(t.url, { key: `guru_ak_${"x".repeat(43)}` })).toEqual({ status: 401, body: expect.stringContaining("unknown agent key") });
    expect(await rawUpgrade(t.url, { key: agentKey, protocol: "guru.wire.v0" })).toEqual({
      status: 400,
      body: expect.stringContaining("this server speaks guru.wire.v1"),
    });
    expect(await rawUpgrade(t.url, { key: agentKey, protocol: null })).toEqual({ status: 400, body: expect.stringContaining("subprotocol (none)") });

    // The right key works until it is revoked; revoking drops the live link.
    const agent = await t.spawnAgent({ agentId, agentKey });
    await agent.waitOnline();
    await t.admin.admin.revokeAgentKey({ agentId });
    await waitFor(() => !t.server.router.isOnline(agentId), 3000, "revoked agent dropped");
    expect(await rawUpgrade(t.url, { key: agentKey })).toEqual({ status: 401, body: expect.stringContaining("revoked") });
    const { agents } = await t.admin.agents.listAgents({ nameContains: "gate-1" });
    expect(agents[0].revoked).toBe(true);
    await agent.stop();
  });

  it("closes a link that sends no Hello in time", async () => {
    const { agentKey } = await t.enrollAgent("mute-1");
    const raw = (await rawUpgrade(t.url, { key: agentKey })) as RawAgent;
    const closed = await raw.closed;
    expect(closed.code).toBe(closeCodes.handshakeTimeout);
  });

  it("answers garbage, oversized, unknown-kind and unknown-channel frames with an error frame and a close code, leaving other agents working", async () => {
    const healthy = await t.startAgent("healthy-1");
    const cases: { name: string; payload: () => Uint8Array | string; code: LinkErrorCode; close: number }[] = [
      { name: "random bytes", payload: () => randomBytes(300), code: LinkErrorCode.MALFORMED_FRAME, close: closeCodes.protocolError },
      {
        name: "oversized",
        payload: () =>
          encodeFrame(create(FrameSchema, { channelId: 1, kind: { case: "data", value: create(ChannelDataSchema, { data: randomBytes(1536 * 1024) }) } })),
        code: LinkErrorCode.FRAME_TOO_LARGE,
        close: closeCodes.frameTooLarge,
      },
      {
        name: "unknown kind",
        payload: () => Uint8Array.from([0x08, 0x00, 0xf2, 0x07, 0x00]),
        code: LinkErrorCode.UNKNOWN_FRAME_KIND,
        close: closeCodes.protocolError,
      },
      {
        name: "unknown channel",
        payload: () =>
          encodeFrame(create(FrameSchema, { channelId: 77, kind: { case: "data", value: create(ChannelDataSchema, { data: new Uint8Array(3) }) } })),
        code: LinkErrorCode.UNKNOWN_CHANNEL,
        close: closeCodes.protocolError,
      },
    ];
    for (const c of cases) {
      const { agentKey } = await t.enrollAgent(`noisy-${cases.indexOf(c)}`);
      const raw = (await rawUpgrade(t.url, { key: agentKey })) as RawAgent;
      raw.sendHello();
      await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 3000, "HelloAck");
      raw.ws.send(c.payload());
      const closed = await raw.closed;
      const error = raw.frames.find((f) => f.kind.case === "linkError");
      expect(error?.kind.case === "linkError" && error.kind.value.code, c.name).toBe(c.code);
      expect(closed.code, c.name).toBe(c.close);
    }
    // A burst of random frames from many sockets at once.
    const storm = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const { agentKey } = await t.enrollAgent(`storm-${i}`);
        const raw = (await rawUpgrade(t.url, { key: agentKey })) as RawAgent;
        raw.sendHello();
        for (let j = 0; j < 20; j++) raw.ws.send(randomBytes(1 + Math.floor(Math.random() * 2000)));
        return raw.closed;
      }),
    );
    expect(storm.every((c) => c.code !== 1000)).toBe(true);

    // The healthy agent's link never noticed.
    expect(t.server.router.isOnline(healthy.agentId)).toBe(true);
    const { sessionId } = await t.admin.sessions.openTunnel({ agentId: healthy.agentId });
    expect((await t.admin.sessions.getTunnelStatus({ sessionId })).session?.status).toBe(SessionStatus.ACTIVE);
    await t.admin.sessions.closeTunnel({ sessionId });
  });

  it("serves /healthz, /readyz and /metrics", async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${t.url}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, "ready\n"]);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain("guru_agents_connected");
    expect(metrics).toMatch(/^guru_tunnels_opened_total [1-9]/m);
  });
  it("answers heartbeats without touching the database: last seen comes from the link", async () => {
    const statements: string[] = [];
    // A burst of 500 heartbeats is over the default control-frame budget (100 at once); this test is about the database.
    const quiet = await startTestServer({
      kind,
      config: { heartbeatIntervalMs: 50, heartbeatDeadlineMs: 5_000 },
      wireLimits: { controlBurstFrames: 1_000 },
      onQuery: (sql) => statements.push(sql),
    });
    onTestFinished(() => quiet.close());
    const real = await quiet.startAgent("beating-1");
    const { agentKey } = await quiet.enrollAgent("beating-raw");
    const raw = (await rawUpgrade(quiet.url, { key: agentKey })) as RawAgent;
    raw.sendHello();
    await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 3000, "HelloAck");
    // Let the connects' own writes (online marks, audit) finish.
    let seen = -1;
    await waitFor(
      async () => {
        const settled = statements.length === seen;
        seen = statements.length;
        if (!settled) await new Promise((r) => setTimeout(r, 300));
        return settled;
      },
      10_000,
      "the database to go quiet",
    );
    const before = statements.length;
    const lastSeenBefore = quiet.server.router.lastSeen(real.agentId)!.getTime();

    for (let i = 1; i <= 500; i++) raw.send({ case: "heartbeat", value: create(HeartbeatSchema, { sequence: BigInt(i) }) });
    await waitFor(() => raw.frames.filter((f) => f.kind.case === "heartbeatAck").length === 500, 5000, "500 HeartbeatAcks");
    await new Promise((r) => setTimeout(r, 500)); // the real agent beats every 50 ms meanwhile

    expect(statements.slice(before)).toEqual([]);
    const acks = raw.frames.filter((f) => f.kind.case === "heartbeatAck").map((f) => (f.kind.value as { sequence: bigint }).sequence);
    expect(acks).toEqual(Array.from({ length: 500 }, (_, i) => BigInt(i + 1)));
    // Last seen moved with the real agent's heartbeats, all from memory.
    expect(quiet.server.router.lastSeen(real.agentId)!.getTime()).toBeGreaterThan(lastSeenBefore);
    const { agents } = await quiet.admin.agents.listAgents({ nameContains: "beating-1" });
    expect(Date.now() - timestampDate(agents[0].lastSeenAt!).getTime()).toBeLessThan(1_000);
    raw.ws.close();
  });
});
