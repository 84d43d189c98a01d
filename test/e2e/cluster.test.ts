// Three real `guru server` processes on one PostgreSQL database and the
// machine's NATS, agents spread over them by URL: every call on every node
// reaches every agent; ownership, takeovers, a dead node, a restarted node.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../gen/guru/api/v1/admin_pb.js";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import type { ApiClients } from "../../lib/api-client.ts";
import { uploadFile } from "../../lib/file-transfer.ts";
import { testDatabases } from "../support/databases.ts";
import { createApiClients } from "../../lib/api-client.ts";
import { agentsPerNode, ownerOf, startTestCluster, waitOnlineEverywhere, type TestCluster } from "../support/cluster.ts";
import { frontDoorName, startFrontDoor, type FrontDoor } from "../support/front-door.ts";
import type { TestHaproxy } from "../support/haproxy.ts";
import { startGuruMcp, textOf, type CallToolResult } from "../support/mcp-stdio-client.ts";
import { waitFor } from "../support/raw-agent.ts";
import { errorOf } from "../support/rpc-errors.ts";

const pg = testDatabases().find((d) => d.kind === "pg");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function download(api: ApiClients, sessionId: string, path: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const m of api.files.readFile({ sessionId, path })) if (m.event.case === "chunk") parts.push(m.event.value.data);
  return Buffer.concat(parts);
}

describe.skipIf(!pg?.available)(`three server nodes on NATS${pg?.available ? "" : ` (skipped: ${pg?.reason})`}`, () => {
  let cluster: TestCluster;
  const agents: { agentId: string; dir: string; home: number }[] = [];

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3 });
    for (let i = 0; i < 3; i++) {
      const a = await cluster.startAgent(`spread-${i}`, cluster.nodes[i].url);
      agents.push({ agentId: a.agentId, dir: a.dir, home: i });
    }
    for (const a of agents) await waitOnlineEverywhere(cluster, a.agentId);
  }, 120_000);
  afterAll(() => cluster?.close());

  it("every call made on every node works for every agent: tunnel, command, stat, list, upload, download, close", async () => {
    for (const a of agents) {
      for (let n = 0; n < 3; n++) {
        const api = cluster.nodes[n].api;
        const { sessionId } = await api.sessions.openTunnel({ agentId: a.agentId });
        const run = await api.exec.runCommand({ sessionId, command: `echo from-node-${n}` });
        expect(Buffer.from(run.stdout).toString()).toBe(`from-node-${n}\n`);
        expect(run.result?.exitCode).toBe(0);
        const data = Buffer.from(`agent ${a.agentId} through node ${n}\n`.repeat(1000));
        const file = join(a.dir, `via-${n}.txt`);
        const { uploadId } = await api.files.startUpload({ sessionId, path: file, size: BigInt(data.length), sha256: sha(data) });
        await api.files.uploadChunk({ uploadId, offset: 0n, data });
        await api.files.finishUpload({ uploadId });
        expect(await readFile(file)).toEqual(data);
        expect((await api.files.stat({ sessionId, path: file })).entry?.size).toBe(BigInt(data.length));
        const listing = await api.files.listDirectory({ sessionId, path: a.dir });
        expect(listing.entries.map((e) => e.name)).toContain(`via-${n}.txt`);
        expect(await download(api, sessionId, file)).toEqual(data);
        await api.sessions.closeTunnel({ sessionId });
        const { session } = await cluster.nodes[(n + 1) % 3].api.sessions.getTunnelStatus({ sessionId });
        expect(session?.status).toBe(SessionStatus.CLOSED);
      }
    }
  });

  it("a download of 24 MiB through a node that does not hold the link arrives whole", async () => {
    const a = agents[0];
    const data = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    const file = join(a.dir, "big.bin");
    await writeFile(file, data);
    const api = cluster.nodes[2].api;
    const { sessionId } = await api.sessions.openTunnel({ agentId: a.agentId });
    // A command on the same agent through the same node answers while the transfer runs.
    const transfer = download(api, sessionId, file);
    const started = performance.now();
    const run = await api.exec.runCommand({ sessionId, command: "echo quick" });
    expect(Buffer.from(run.stdout).toString()).toBe("quick\n");
    expect(performance.now() - started).toBeLessThan(5_000);
    const got = await transfer;
    expect(sha(got)).toBe(sha(data));
    await api.sessions.closeTunnel({ sessionId });
  });

  it("the 50-way OpenTunnel race across the three nodes has exactly one winner; the others get the holder", async () => {
    const a = agents[1];
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => cluster.nodes[i % 3].api.sessions.openTunnel({ agentId: a.agentId })));
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    const winner = (won[0] as PromiseFulfilledResult<{ sessionId: string }>).value.sessionId;
    for (const r of results.filter((r) => r.status === "rejected")) {
      const e = await errorOf(Promise.reject((r as PromiseRejectedResult).reason));
      expect(e.code, e.message).toBe(Code.AlreadyExists);
      expect(e.message).toContain(winner);
    }
    const { sessions } = await cluster.nodes[0].api.sessions.listSessions({ agentId: a.agentId, status: SessionStatus.ACTIVE, allTechnicians: true });
    expect(sessions.map((s) => s.sessionId)).toEqual([winner]);
    await cluster.nodes[2].api.sessions.closeTunnel({ sessionId: winner });
  });

  it("an upload whose calls each go to another node (a balancer without stickiness) finishes byte-identical", async () => {
    const a = agents[2];
    const [start, bytes, finish] = [cluster.nodes[0].api, cluster.nodes[1].api, cluster.nodes[0].api];
    const { sessionId } = await start.sessions.openTunnel({ agentId: a.agentId });
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const file = join(a.dir, "hopping.bin");
    // Node 1 opens the upload's channel at the agent; node 2 carries the bytes through a newer one, which takes over.
    const { uploadId } = await start.files.startUpload({ sessionId, path: file, size: BigInt(data.length), sha256: sha(data) });
    for (let offset = 0; offset < data.length; offset += 1024 * 1024) {
      await bytes.files.uploadChunk({ uploadId, offset: BigInt(offset), data: data.subarray(offset, offset + 1024 * 1024) });
    }
    // Node 1's own count says nothing arrived; it asks the agent before refusing.
    const done = await finish.files.finishUpload({ uploadId });
    expect([done.size, done.sha256]).toEqual([BigInt(data.length), sha(data)]);
    expect(sha(await readFile(file))).toBe(sha(data));
    await start.sessions.closeTunnel({ sessionId });
  });

  it("guru mcp configured against node 1 runs commands and file tools on an agent whose link is on node 2", async () => {
    const a = agents[1];
    expect(ownerOf(cluster, a.agentId)).toBe(1);
    const { technicianId } = await cluster.nodes[0].api.admin.createTech({ name: "mcp-cluster-tech", role: Role.TECH });
    const { token } = await cluster.nodes[0].api.admin.issueToken({ technicianId });
    const mcp = await startGuruMcp({ url: cluster.nodes[0].url, token });
    try {
      const call = async (name: string, args: Record<string, unknown>) => {
        const res = (await mcp.client.callTool({ name, arguments: args })) as CallToolResult & { structuredContent?: Record<string, unknown> };
        expect(res.isError, `${name}: ${textOf(res)}\n${mcp.stderr()}`).toBeFalsy();
        return res.structuredContent;
      };
      const run = await call("run_command", { agent: "spread-1", command: "echo across; pwd", workingDir: a.dir });
      expect(run).toMatchObject({ status: "exited", exitCode: 0, stdout: `across\n${a.dir}\n`, complete: true, agent: "spread-1" });
      const path = join(a.dir, "from-mcp.txt");
      expect(await call("write_file", { agent: "spread-1", path, content: "written through node 1\n" })).toMatchObject({ path, size: 23 });
      expect(await readFile(path, "utf8")).toBe("written through node 1\n");
      expect(await call("read_file", { agent: a.agentId, path })).toMatchObject({ text: "written through node 1\n", eof: true });
      // The tunnel the tools opened is the technician's, held through node 1, to the agent on node 2.
      const onNode3 = cluster.apiFor(2, token);
      const { sessions } = await onNode3.sessions.listSessions({ agentId: a.agentId, status: SessionStatus.ACTIVE });
      expect(sessions).toHaveLength(1);
      await onNode3.sessions.closeTunnel({ sessionId: sessions[0].sessionId });
    } finally {
      await mcp.close();
    }
  });

  it("an agent that reconnects to another node moves there: the old node drops its link, its tunnel ends with a reason", async () => {
    const moving = await cluster.startAgent("mover", cluster.nodes[0].url);
    await waitOnlineEverywhere(cluster, moving.agentId);
    const { sessionId } = await cluster.nodes[1].api.sessions.openTunnel({ agentId: moving.agentId });
    // The same agent key dialling another node while the first link is still up: a second link for the same agent.
    const again = await cluster.runAgent(moving.agentKey, cluster.nodes[2].url, moving.dir);
    await moving.process.stop("SIGKILL");
    await waitFor(
      async () => (await cluster.nodes[1].api.sessions.getTunnelStatus({ sessionId })).session?.status === SessionStatus.CLOSED,
      10_000,
      "the old tunnel to close",
    );
    const { session } = await cluster.nodes[0].api.sessions.getTunnelStatus({ sessionId });
    expect(session?.closeReason).toBe("agent reconnected");
    await waitOnlineEverywhere(cluster, moving.agentId);
    const { sessionId: fresh } = await cluster.nodes[0].api.sessions.openTunnel({ agentId: moving.agentId });
    const run = await cluster.nodes[0].api.exec.runCommand({ sessionId: fresh, command: "echo moved" });
    expect(Buffer.from(run.stdout).toString()).toBe("moved\n");
    await cluster.nodes[0].api.sessions.closeTunnel({ sessionId: fresh });
    await again.stop("SIGKILL");
  });
});

describe.skipIf(!pg?.available)(`a cluster node that dies or restarts, behind ${frontDoorName}${pg?.available ? "" : ` (skipped: ${pg?.reason})`}`, () => {
  let cluster: TestCluster;
  let front: FrontDoor;
  let haproxy: TestHaproxy | undefined;

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3 });
    // Checks once a second: slow enough that calls reach a dead node before HAProxy marks it down.
    front = await startFrontDoor(
      cluster.nodes.map((n) => ({ name: n.nodeId, url: n.url })),
      { checkInterMs: 1000 },
    );
    haproxy = front.haproxy;
  }, 120_000);
  afterAll(async () => {
    await front?.close();
    await cluster?.close();
  });

  it("a node killed with SIGKILL: its agent reconnects to another node through the front door, its tunnels close with a reason, the others' stay open", async () => {
    const spread = [];
    for (let i = 0; i < 3; i++) spread.push(await cluster.startAgent(`spread-${i}`, front.url));
    for (const a of spread) await waitOnlineEverywhere(cluster, a.agentId);
    // leastconn (or the stand-in's turns) puts one agent on each node.
    await waitFor(async () => Object.values(await agentsPerNode(cluster.nodes[0].url)).join() === "1,1,1", 5_000, "one agent per node");
    expect(await agentsPerNode(cluster.nodes[1].url)).toEqual({ node1: 1, node2: 1, node3: 1 });
    const owners = spread.map((a) => ownerOf(cluster, a.agentId));
    expect([...owners].sort()).toEqual([0, 1, 2]);
    const victim = spread[owners.indexOf(2)];

    // Technician calls through the front door too.
    const api = createApiClients({ url: front.url, token: cluster.adminToken });
    const tunnels = new Map<string, string>();
    for (const a of spread) tunnels.set(a.agentId, (await api.sessions.openTunnel({ agentId: a.agentId })).sessionId);

    await killNode(2);
    // Before HAProxy's checks notice: calls still land, redispatched from the dead node to a live one.
    for (let i = 0; i < 6; i++) expect((await api.agents.listAgents({ nameContains: "spread-" })).agents).toHaveLength(3);
    await victim.process.waitFor(/connected to the server[\s\S]*connected to the server/, 20_000);
    const doomed = tunnels.get(victim.agentId) as string;
    await waitFor(
      async () => (await api.sessions.getTunnelStatus({ sessionId: doomed })).session?.status === SessionStatus.CLOSED,
      15_000,
      "the dead node's tunnel to close",
    );
    const { session } = await api.sessions.getTunnelStatus({ sessionId: doomed });
    expect(session?.closeReason).toMatch(/server node node3 stopped answering|agent reconnected|no live server node/);
    for (const a of spread.filter((a) => a !== victim)) {
      const sessionId = tunnels.get(a.agentId) as string;
      expect((await api.sessions.getTunnelStatus({ sessionId })).session?.status).toBe(SessionStatus.ACTIVE);
      const run = await api.exec.runCommand({ sessionId, command: "echo kept" });
      expect(Buffer.from(run.stdout).toString()).toBe("kept\n");
      await api.sessions.closeTunnel({ sessionId });
    }

    // The victim now lives on node 1 or 2 and is reachable through the front door.
    await waitOnlineEverywhere(cluster, victim.agentId, 15_000);
    expect([0, 1]).toContain(ownerOf(cluster, victim.agentId));
    const { sessionId } = await api.sessions.openTunnel({ agentId: victim.agentId });
    const run = await api.exec.runCommand({ sessionId, command: "echo survived" });
    expect(Buffer.from(run.stdout).toString()).toBe("survived\n");
    await api.sessions.closeTunnel({ sessionId });
    if (haproxy) await haproxy.waitForLog(/Server guru_nodes\/node3 is DOWN/, { timeoutMs: 5_000 });

    // Back on the same port, the node rejoins the rotation.
    await restartNode(2);
    for (const a of spread) await a.process.stop("SIGKILL");
  });

  /** When each killed node died, by index: HAProxy's log position then. */
  const killedAt = new Map<number, number | undefined>();

  async function killNode(i: number) {
    killedAt.set(i, haproxy?.mark());
    await cluster.nodes[i].process.stop("SIGKILL");
  }

  /**
   * Starts node i again on its port and waits until HAProxy has it back in the
   * rotation. A killed node is first waited out of it: a node back before two
   * failed checks never leaves the rotation, so HAProxy would never log it UP.
   */
  async function restartNode(i: number) {
    if (haproxy && killedAt.has(i))
      await haproxy.waitForLog(new RegExp(`Server guru_nodes/node${i + 1} is DOWN`), { since: killedAt.get(i), timeoutMs: 10_000 });
    killedAt.delete(i);
    const since = haproxy?.mark();
    await cluster.startNode(i);
    await haproxy?.waitForLog(new RegExp(`Server guru_nodes/node${i + 1} is UP`), { since, timeoutMs: 10_000 });
  }

  /**
   * Starts an upload of `content` through `api`, lands its first MiB, kills node
   * `victim` while the second MiB is in flight, and brings the node back once
   * `resume` (which must finish the upload) is done.
   */
  async function uploadInterruptedByKill(api: ApiClients, sessionId: string, path: string, content: Buffer, victim: number) {
    const { uploadId } = await api.files.startUpload({ sessionId, path, size: BigInt(content.length), sha256: sha(content) });
    const mib = 1024 * 1024;
    expect((await api.files.uploadChunk({ uploadId, offset: 0n, data: content.subarray(0, mib) })).receivedOffset).toBe(BigInt(mib));
    // The first MiB on the agent's disk (received by the node is not yet written there), so the resume must start past it.
    await waitFor(async () => (await api.files.getUpload({ uploadId })).committedOffset === BigInt(mib), 5_000, "the first MiB on the agent");
    const inFlight = api.files.uploadChunk({ uploadId, offset: BigInt(mib), data: content.subarray(mib, 2 * mib) }).catch((err: unknown) => err);
    await killNode(victim);
    await inFlight;
    return uploadId;
  }

  it("an upload whose technician-side node is killed mid-transfer resumes through the front door, byte-identical on the agent's disk", async () => {
    const agent = await cluster.startAgent("upload-kept", front.url);
    await waitOnlineEverywhere(cluster, agent.agentId);
    const owner = ownerOf(cluster, agent.agentId);
    const through = (owner + 1) % 3;
    const { sessionId } = await cluster.nodes[through].api.sessions.openTunnel({ agentId: agent.agentId });
    const content = randomBytes(6 * 1024 * 1024 + 321);
    const source = join(cluster.tempDir, "upload-kept.bin");
    await writeFile(source, content);
    const target = join(agent.dir, "kept.bin");
    const uploadId = await uploadInterruptedByKill(cluster.nodes[through].api, sessionId, target, content, through);

    // The agent's node is alive: the tunnel stays open, and the upload goes on in it through another node.
    const api = createApiClients({ url: front.url, token: cluster.adminToken });
    expect((await api.sessions.getTunnelStatus({ sessionId })).session?.status).toBe(SessionStatus.ACTIVE);
    const resumedFrom: number[] = [];
    const done = await uploadFile({
      api,
      session: async () => sessionId,
      localPath: source,
      remotePath: target,
      uploadId,
      bulk: api.endpoint,
      retry: { attempts: 10, baseDelayMs: 200, maxDelayMs: 1_000 },
      onProgress: (p) => resumedFrom.length === 0 && resumedFrom.push(p.done),
    });
    // From the agent's committed offset: past the first MiB, short of the end of the one in flight.
    expect(resumedFrom[0]).toBeGreaterThanOrEqual(1024 * 1024);
    expect(resumedFrom[0]).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect([done.size, done.sha256]).toEqual([content.length, sha(content)]);
    expect(sha(await readFile(target))).toBe(sha(content));
    await api.sessions.closeTunnel({ sessionId });
    await agent.process.stop("SIGKILL");
    await restartNode(through);
  });

  it("an upload whose agent's node is killed mid-transfer resumes in a new tunnel once the agent is back through the front door, byte-identical", async () => {
    const agent = await cluster.startAgent("upload-moved", front.url);
    await waitOnlineEverywhere(cluster, agent.agentId);
    const owner = ownerOf(cluster, agent.agentId);
    const through = (owner + 1) % 3;
    const api = cluster.nodes[through].api;
    const { sessionId } = await api.sessions.openTunnel({ agentId: agent.agentId });
    const content = randomBytes(6 * 1024 * 1024 + 123);
    const source = join(cluster.tempDir, "upload-moved.bin");
    await writeFile(source, content);
    const target = join(agent.dir, "moved.bin");
    const uploadId = await uploadInterruptedByKill(api, sessionId, target, content, owner);

    await agent.process.waitFor(/connected to the server[\s\S]*connected to the server/, 20_000);
    await waitOnlineEverywhere(cluster, agent.agentId, 15_000);
    expect(ownerOf(cluster, agent.agentId)).not.toBe(owner);
    // The tunnel died with the agent's node; the upload resumes in a new one.
    const tunnels = new Set<string>();
    const resumedFrom: number[] = [];
    const done = await uploadFile({
      api,
      session: async () => {
        const open = await api.sessions.listSessions({ agentId: agent.agentId, status: SessionStatus.ACTIVE });
        const id = open.sessions[0]?.sessionId ?? (await api.sessions.openTunnel({ agentId: agent.agentId })).sessionId;
        tunnels.add(id);
        return id;
      },
      localPath: source,
      remotePath: target,
      uploadId,
      bulk: api.endpoint,
      retry: { attempts: 20, baseDelayMs: 200, maxDelayMs: 1_000 },
      onProgress: (p) => resumedFrom.length === 0 && resumedFrom.push(p.done),
    });
    expect(resumedFrom[0]).toBeGreaterThanOrEqual(1024 * 1024);
    expect(resumedFrom[0]).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(tunnels.has(sessionId)).toBe(false);
    expect([done.size, done.sha256]).toEqual([content.length, sha(content)]);
    expect(sha(await readFile(target))).toBe(sha(content));
    expect((await api.sessions.getTunnelStatus({ sessionId })).session?.status).toBe(SessionStatus.CLOSED);
    for (const id of tunnels) await api.sessions.closeTunnel({ sessionId: id });
    await agent.process.stop("SIGKILL");
    await restartNode(owner);
  });

  it("a restarted node closes only the tunnels it held, not the other nodes'", async () => {
    const mine = await cluster.startAgent("on-node1", cluster.nodes[0].url);
    const theirs = await cluster.startAgent("on-node2-b", cluster.nodes[1].url);
    await waitOnlineEverywhere(cluster, mine.agentId);
    await waitOnlineEverywhere(cluster, theirs.agentId);
    const { sessionId: other } = await cluster.nodes[1].api.sessions.openTunnel({ agentId: theirs.agentId });
    const { sessionId: own } = await cluster.nodes[1].api.sessions.openTunnel({ agentId: mine.agentId });
    await cluster.nodes[0].process.stop("SIGKILL");
    await cluster.startNode(0);
    await waitFor(
      async () => (await cluster.nodes[1].api.sessions.getTunnelStatus({ sessionId: own })).session?.status === SessionStatus.CLOSED,
      15_000,
      "node 1's tunnel to close",
    );
    expect((await cluster.nodes[1].api.sessions.getTunnelStatus({ sessionId: own })).session?.closeReason).toMatch(
      // Whichever notices first: the restarted node, the others' heartbeat sweep, or their sweep of tunnels whose agent no live node holds.
      /^(server restarted|server node node1 stopped answering|no live server node holds the agent's link)/,
    );
    const { session } = await cluster.nodes[0].api.sessions.getTunnelStatus({ sessionId: other });
    expect(session?.status).toBe(SessionStatus.ACTIVE);
    const run = await cluster.nodes[0].api.exec.runCommand({ sessionId: other, command: "echo still-here" });
    expect(Buffer.from(run.stdout).toString()).toBe("still-here\n");
    // Its agent comes back to the restarted node and is reachable from the others again.
    await waitOnlineEverywhere(cluster, mine.agentId, 15_000);
  });
});
