// Three real `guru server` processes on one PostgreSQL database and the
// machine's NATS, agents spread over them by URL: every call on every node
// reaches every agent; ownership, takeovers, a dead node, a restarted node.
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import type { ApiClients } from "../../lib/api-client.ts";
import { testDatabases } from "../support/databases.ts";
import { createApiClients } from "../../lib/api-client.ts";
import { agentsPerNode, ownerOf, startTestCluster, waitOnlineEverywhere, type TestCluster } from "../support/cluster.ts";
import { haproxyMissing, startHaproxy, type TestHaproxy } from "../support/haproxy.ts";
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

// The cluster's front door: HAProxy configured from deploy/haproxy.cfg, or,
// where HAProxy cannot run, agents spread over the nodes by URL.
const noHaproxy = haproxyMissing();
const front = noHaproxy ? `agents spread over the nodes by URL (no HAProxy: ${noHaproxy})` : "behind HAProxy (deploy/haproxy.cfg)";

describe.skipIf(!pg?.available)(`a cluster node that dies or restarts, ${front}${pg?.available ? "" : ` (skipped: ${pg?.reason})`}`, () => {
  let cluster: TestCluster;
  let haproxy: TestHaproxy | undefined;
  /** Where agent i dials: HAProxy, or node i (mod 3) without it. */
  const entry = (i: number) => haproxy?.url ?? cluster.nodes[i % 3].url;

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3 });
    // Checks once a second: slow enough that calls reach a dead node before HAProxy marks it down.
    if (!noHaproxy) haproxy = await startHaproxy({ backends: cluster.nodes.map((n) => ({ name: n.nodeId, url: n.url })), checkInterMs: 1000 });
  }, 120_000);
  afterAll(async () => {
    await haproxy?.close();
    await cluster?.close();
  });

  it("a node killed with SIGKILL: its agent reconnects to another node through the front door, its tunnels close with a reason, the others' stay open", async () => {
    const spread = [];
    for (let i = 0; i < 3; i++) spread.push(await cluster.startAgent(`spread-${i}`, entry(i)));
    for (const a of spread) await waitOnlineEverywhere(cluster, a.agentId);
    // leastconn puts one agent on each node.
    await waitFor(async () => Object.values(await agentsPerNode(cluster.nodes[0].url)).join() === "1,1,1", 5_000, "one agent per node");
    expect(await agentsPerNode(cluster.nodes[1].url)).toEqual({ node1: 1, node2: 1, node3: 1 });
    const owners = spread.map((a) => ownerOf(cluster, a.agentId));
    expect([...owners].sort()).toEqual([0, 1, 2]);
    const victim = spread[owners.indexOf(2)];

    // Technician calls through the front door too.
    const api = haproxy ? createApiClients({ url: haproxy.url, token: cluster.adminToken }) : cluster.nodes[0].api;
    const tunnels = new Map<string, string>();
    for (const a of spread) tunnels.set(a.agentId, (await api.sessions.openTunnel({ agentId: a.agentId })).sessionId);

    await cluster.nodes[2].process.stop("SIGKILL");
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
    if (haproxy) await haproxy.waitForLog(/Server guru_nodes\/node3 is DOWN/, 5_000);

    // Back on the same port, the node rejoins the rotation.
    await cluster.startNode(2);
    if (haproxy) await haproxy.waitForLog(/Server guru_nodes\/node3 is UP/, 10_000);
    for (const a of spread) await a.process.stop("SIGKILL");
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
      /^(server restarted|server node node1 stopped answering)/,
    );
    const { session } = await cluster.nodes[0].api.sessions.getTunnelStatus({ sessionId: other });
    expect(session?.status).toBe(SessionStatus.ACTIVE);
    const run = await cluster.nodes[0].api.exec.runCommand({ sessionId: other, command: "echo still-here" });
    expect(Buffer.from(run.stdout).toString()).toBe("still-here\n");
    // Its agent comes back to the restarted node and is reachable from the others again.
    await waitOnlineEverywhere(cluster, mine.agentId, 15_000);
  });
});
