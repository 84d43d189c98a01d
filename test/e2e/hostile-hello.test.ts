// Lying Hellos against a real `guru server` process: each one gets its own
// link closed with a LinkError naming the field, nothing it said is stored,
// the process stays up, and a well-behaved agent runs a command afterwards.
// A second Hello, a frame before Hello and a key revoked between the upgrade
// and the Hello are refused too.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { expect, it } from "vitest";
import { HelloSchema, LinkErrorCode, TunnelReadySchema, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { describeDatabases } from "../support/databases.ts";
import { rawUpgrade, waitFor, type RawAgent } from "../support/raw-agent.ts";
import { useServerProcess } from "../support/server-process-fixture.ts";

type HelloInit = MessageInitShape<typeof HelloSchema>;
const honest = (): HelloInit => ({
  agentVersion: "0.2.0",
  inventory: { hostname: "liar-host", os: "linux", osRelease: "6.1", arch: "x64" },
  capabilities: ["exec", "files"],
  initialWindowBytes: 2 << 20,
  maxFrameBytes: 1 << 20,
});

function linkErrorOf(frames: Frame[]) {
  const frame = frames.find((f) => f.kind.case === "linkError");
  return frame?.kind.case === "linkError" ? frame.kind.value : undefined;
}

describeDatabases("hostile Hello against a server process", (kind) => {
  const f = useServerProcess(kind, { GURU_HANDSHAKE_TIMEOUT_MS: "3000" });

  const lies: { name: string; spoil: (h: HelloInit) => void; field: string }[] = [
    { name: "max_frame_bytes 0", spoil: (h) => (h.maxFrameBytes = 0), field: "Hello.max_frame_bytes" },
    { name: "max_frame_bytes 1", spoil: (h) => (h.maxFrameBytes = 1), field: "Hello.max_frame_bytes" },
    { name: "max_frame_bytes 2^32-1", spoil: (h) => (h.maxFrameBytes = 0xffff_ffff), field: "Hello.max_frame_bytes" },
    { name: "initial_window_bytes 0", spoil: (h) => (h.initialWindowBytes = 0), field: "Hello.initial_window_bytes" },
    { name: "initial_window_bytes 1", spoil: (h) => (h.initialWindowBytes = 1), field: "Hello.initial_window_bytes" },
    { name: "initial_window_bytes 2^32-1", spoil: (h) => (h.initialWindowBytes = 0xffff_ffff), field: "Hello.initial_window_bytes" },
    { name: "a 500 KB hostname", spoil: (h) => (h.inventory!.hostname = "h".repeat(500_000)), field: "Hello.inventory.hostname" },
    { name: "a 500 KB os", spoil: (h) => (h.inventory!.os = "o".repeat(500_000)), field: "Hello.inventory.os" },
    { name: "a 500 KB agent_version", spoil: (h) => (h.agentVersion = "v".repeat(500_000)), field: "Hello.agent_version" },
    { name: "10,000 capabilities", spoil: (h) => (h.capabilities = Array.from({ length: 10_000 }, (_, i) => `cap${i}`)), field: "Hello.capabilities" },
    { name: "a 500 KB capability", spoil: (h) => (h.capabilities = ["exec", "c".repeat(500_000)]), field: "Hello.capabilities[1]" },
  ];

  it(`refuses ${lies.length} lying Hellos, each with a LinkError naming the field (1008), storing nothing; the process stays up and another agent runs a command`, async () => {
    const { agentId, agentKey } = await f.api.admin.enrollAgent({ name: "liar" });
    for (const lie of lies) {
      const raw = (await rawUpgrade(f.url, { key: agentKey })) as RawAgent;
      const hello = honest();
      lie.spoil(hello);
      raw.send({ case: "hello", value: create(HelloSchema, hello) });
      const closed = await raw.closed;
      expect(closed.code, lie.name).toBe(closeCodes.policyViolation);
      const error = linkErrorOf(raw.frames);
      expect(error?.code, lie.name).toBe(LinkErrorCode.PROTOCOL_VIOLATION);
      expect(error?.message, lie.name).toContain(lie.field);
      expect(
        raw.frames.some((f) => f.kind.case === "helloAck"),
        lie.name,
      ).toBe(false);
    }
    expect(f.server.child.exitCode).toBeNull();
    // Nothing the liar said was kept: never online, no inventory.
    const { agents } = await f.api.agents.listAgents({ nameContains: "liar" });
    expect(agents).toHaveLength(1);
    expect(agents[0]).toMatchObject({ agentId, online: false, hostname: "", os: "" });
    await f.runThroughHealthyAgent("healthy-after-lies");
    const metrics = await (await fetch(`${f.url}/metrics`)).text();
    expect(metrics).toMatch(/^guru_unhandled_rejections_total 0$/m);
  });

  it("refuses a second Hello, and a frame before Hello, with PROTOCOL_VIOLATION (1002)", async () => {
    const { agentId, agentKey } = await f.api.admin.enrollAgent({ name: "twice" });
    const raw = (await rawUpgrade(f.url, { key: agentKey })) as RawAgent;
    raw.send({ case: "hello", value: create(HelloSchema, honest()) });
    await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 5000, "HelloAck");
    raw.send({ case: "hello", value: create(HelloSchema, honest()) });
    expect((await raw.closed).code).toBe(closeCodes.protocolError);
    expect(linkErrorOf(raw.frames)?.message).toMatch(/second Hello/);
    await waitFor(async () => !(await f.api.agents.listAgents({ nameContains: "twice" })).agents[0].online, 5000, "agent offline");

    const early = (await rawUpgrade(f.url, { key: agentKey })) as RawAgent;
    early.send({ case: "tunnelReady", value: create(TunnelReadySchema, { sessionId: "00000000-0000-0000-0000-000000000000" }) });
    early.send({ case: "hello", value: create(HelloSchema, honest()) });
    expect((await early.closed).code).toBe(closeCodes.protocolError);
    expect(linkErrorOf(early.frames)?.message).toMatch(/first frame must be Hello, not tunnelReady/);
    expect((await f.api.agents.listAgents({ nameContains: "twice" })).agents[0]).toMatchObject({ agentId, online: false });
    expect(f.server.child.exitCode).toBeNull();
  });

  it("checks the key again after Hello: a key revoked between the upgrade and the Hello is refused with 4003 (revoked)", async () => {
    const { agentId, agentKey } = await f.api.admin.enrollAgent({ name: "revoked-late" });
    const raw = (await rawUpgrade(f.url, { key: agentKey })) as RawAgent;
    await f.api.admin.revokeAgentKey({ agentId });
    raw.send({ case: "hello", value: create(HelloSchema, honest()) });
    const closed = await raw.closed;
    expect(closed.code).toBe(closeCodes.revoked);
    expect(closed.reason).toMatch(/revoked or replaced/);
    expect(raw.frames.some((f) => f.kind.case === "helloAck")).toBe(false);
    const { agents } = await f.api.agents.listAgents({ nameContains: "revoked-late" });
    expect(agents[0]).toMatchObject({ online: false, revoked: true, hostname: "" });
    await f.runThroughHealthyAgent("healthy-after-revoke");
  });
});
