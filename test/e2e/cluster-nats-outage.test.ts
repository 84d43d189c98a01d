// NATS stopped and started under two server nodes (a private nats-server, so
// other tests' NATS is untouched): calls to an agent on the other node fail
// promptly with Unavailable, local ones go on, everything recovers. Also:
// readiness and metrics of a clustered node, and token revocation across nodes.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../gen/guru/api/v1/admin_pb.js";
import { createApiClients } from "../../lib/api-client.ts";
import { testDatabases } from "../support/databases.ts";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { agentsPerNode, ownerOf, startPrivateNats, startTestCluster, waitOnlineEverywhere, type TestCluster } from "../support/cluster.ts";
import { frontDoorName, startFrontDoor } from "../support/front-door.ts";
import { join } from "node:path";
import { waitFor } from "../support/raw-agent.ts";
import { spawnGuru } from "../support/server-process.ts";
import { errorOf } from "../support/rpc-errors.ts";

const pg = testDatabases().find((d) => d.kind === "pg");

describe.skipIf(!pg?.available)(`two nodes when NATS goes away${pg?.available ? "" : ` (skipped: ${pg?.reason})`}`, () => {
  let cluster: TestCluster;
  let nats: Awaited<ReturnType<typeof startPrivateNats>>;
  beforeAll(async () => {
    nats = await startPrivateNats();
    // Token confirmations are remembered for the longest allowed time: only the notice can make a revocation prompt.
    cluster = await startTestCluster({ nodes: 2, natsUrl: nats.url, env: { GURU_TOKEN_CHECK_CACHE_MS: "10000" } });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await nats?.close();
  });

  it("refuses to start a second process under a node id that a running node uses, and the running node carries on", async () => {
    const dup = spawnGuru(["server", "--port", "0", "--data-dir", join(cluster.tempDir, "dup"), "--node-id", "node1"], {
      DATABASE_URL: cluster.dbUrl,
      GURU_NATS_URL: nats.url,
      GURU_NATS_SUBJECT_PREFIX: cluster.prefix,
    });
    const exitCode = await new Promise((resolve) => dup.child.once("exit", resolve));
    expect(exitCode).toBe(1);
    expect(dup.output()).toContain('server node id "node1" is in use by another running server');
    expect((await fetch(`${cluster.nodes[0].url}/readyz`)).status).toBe(200);
  });

  it("reports NATS in /readyz and per-node agents and relayed channels in /metrics", async () => {
    const agent = await cluster.startAgent("metered", cluster.nodes[0].url);
    await waitOnlineEverywhere(cluster, agent.agentId);
    const ready = await fetch(`${cluster.nodes[1].url}/readyz`);
    expect(ready.status).toBe(200);
    const { sessionId } = await cluster.nodes[1].api.sessions.openTunnel({ agentId: agent.agentId });
    await cluster.nodes[1].api.exec.runCommand({ sessionId, command: "echo metered" });
    await cluster.nodes[1].api.sessions.closeTunnel({ sessionId });
    const metrics = await (await fetch(`${cluster.nodes[1].url}/metrics`)).text();
    expect(metrics).toMatch(/guru_cluster_agents\{node="node1"\} 1/);
    expect(metrics).toMatch(/guru_cluster_nats_connected\{node="node2"\} 1/);
    expect(metrics).toMatch(/guru_relay_bytes_total\{node="node2",direction="received"\} [1-9]/);
    expect(metrics).toMatch(/guru_relayed_channels\{node="node2",role="caller"\} 0/);
  });

  it("a token revoked on one node is refused on the other at once (not after the check cache)", async () => {
    const { technicianId } = await cluster.nodes[0].api.admin.createTech({ name: "revoked-tech", role: Role.TECH });
    const issued = await cluster.nodes[0].api.admin.issueToken({ technicianId });
    const onNode2 = createApiClients({ url: cluster.nodes[1].url, token: issued.token });
    await onNode2.agents.listAgents({});
    await cluster.nodes[0].api.admin.revokeToken({ tokenId: issued.tokenId });
    await waitFor(
      async () => (await errorOf(onNode2.agents.listAgents({})).catch(() => ({ code: undefined }))).code === Code.Unauthenticated,
      2_000,
      "the revocation to reach node 2",
    );
    // The refusal stays: the token is revoked in the database too.
    expect((await errorOf(onNode2.agents.listAgents({}))).code).toBe(Code.Unauthenticated);
  });

  it("NATS stopped: calls to the other node's agent fail promptly with Unavailable, local ones work; NATS back: all recovers", async () => {
    const local = await cluster.startAgent("near", cluster.nodes[0].url);
    const remote = await cluster.startAgent("far", cluster.nodes[1].url);
    await waitOnlineEverywhere(cluster, local.agentId);
    await waitOnlineEverywhere(cluster, remote.agentId);
    const api = cluster.nodes[0].api;
    const { sessionId: near } = await api.sessions.openTunnel({ agentId: local.agentId });
    const { sessionId: far } = await api.sessions.openTunnel({ agentId: remote.agentId });

    await nats.stop();
    await waitFor(async () => (await fetch(`${cluster.nodes[0].url}/readyz`)).status === 503, 10_000, "readyz to report NATS down");
    expect(await (await fetch(`${cluster.nodes[0].url}/readyz`)).text()).toBe("NATS unreachable\n");
    const started = performance.now();
    const failed = await errorOf(api.exec.runCommand({ sessionId: far, command: "echo far" }));
    expect(failed.code, failed.message).toBe(Code.Unavailable);
    expect(performance.now() - started).toBeLessThan(1_000);
    const run = await api.exec.runCommand({ sessionId: near, command: "echo near" });
    expect(Buffer.from(run.stdout).toString()).toBe("near\n");

    await nats.start();
    await waitFor(async () => (await fetch(`${cluster.nodes[0].url}/readyz`)).status === 200, 15_000, "readyz to recover");
    await waitFor(
      async () => {
        try {
          const again = await api.exec.runCommand({ sessionId: far, command: "echo far-again" });
          return Buffer.from(again.stdout).toString() === "far-again\n";
        } catch {
          return false;
        }
      },
      15_000,
      "the far agent to answer again",
    );
  });

  it(`a drained node (SIGUSR2) answers /readyz 503, refuses agent links and hands its agents to the other node, behind ${frontDoorName}`, async () => {
    const front = await startFrontDoor(
      cluster.nodes.map((n) => ({ name: n.nodeId, url: n.url })),
      { checkInterMs: 1000 },
    );
    const { haproxy } = front;
    try {
      // Four agents: leastconn (or the stand-in's turns) puts two on each node.
      const agents = [];
      for (let i = 0; i < 4; i++) agents.push(await cluster.startAgent(`drained-${i}`, front.url));
      for (const a of agents) await waitOnlineEverywhere(cluster, a.agentId);
      const agent = agents[0];
      const drained = ownerOf(cluster, agent.agentId);
      const other = 1 - drained;
      const { nodeId } = cluster.nodes[drained];
      const moving = agents.filter((a) => ownerOf(cluster, a.agentId) === drained);
      expect(moving).toHaveLength(2);
      const { sessionId } = await cluster.nodes[other].api.sessions.openTunnel({ agentId: agent.agentId });
      cluster.nodes[drained].process.child.kill("SIGUSR2");
      await waitFor(async () => (await fetch(`${cluster.nodes[drained].url}/readyz`)).status === 503, 5_000, "readyz to report draining");
      expect(await (await fetch(`${cluster.nodes[drained].url}/readyz`)).text()).toBe("draining\n");
      for (const a of moving) await a.process.waitFor(/connected to the server[\s\S]*connected to the server/, 20_000);
      await waitFor(
        async () => (await cluster.nodes[other].api.sessions.getTunnelStatus({ sessionId })).session?.status === SessionStatus.CLOSED,
        10_000,
        "the tunnel to end",
      );
      await waitFor(async () => (await agentsPerNode(cluster.nodes[other].url))[nodeId] === 0, 10_000, `${nodeId} to hold no agent`);
      for (const a of agents) expect(ownerOf(cluster, a.agentId)).toBe(other);
      // HAProxy retries the draining node's refusal on the other node (retry-on 503 for /agent): no agent sees it.
      if (haproxy) expect(moving.map((a) => a.process.output().match(/refused the connection \(HTTP 503\)/g) ?? [])).toEqual([[], []]);
      if (haproxy) await haproxy.waitForLog(new RegExp(`Server guru_nodes/${nodeId} is DOWN`), { timeoutMs: 5_000 });
      const { sessionId: again } = await cluster.nodes[drained].api.sessions.openTunnel({ agentId: agent.agentId });
      const run = await cluster.nodes[drained].api.exec.runCommand({ sessionId: again, command: "echo after-drain" });
      expect(Buffer.from(run.stdout).toString()).toBe("after-drain\n");
      await cluster.nodes[drained].api.sessions.closeTunnel({ sessionId: again });
    } finally {
      await front.close();
    }
  });
});
