// Everything a server needs to run as one node of a cluster, in one place:
// the NATS connection, the router that reaches agents on other nodes, the
// owner's side of that (control and channel relays), ownership and node
// clean-up, token revocation notices, readiness and metrics.
import os from "node:os";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { WireLimits } from "../../lib/wire/limits.ts";
import type { RevokedTokens } from "../auth/tokens.ts";
import type { ServerConfig } from "../config.ts";
import type { AgentRegistry, AgentRouter } from "../link/agent-router.ts";
import { createNatsChannels } from "../link/nats-channels.ts";
import { createClusterRouter, serveAgentControl } from "../link/nats-router.ts";
import type { Store } from "../store/index.ts";
import { createClusterMetrics } from "./cluster-metrics.ts";
import { createClusterNode } from "./cluster-node.ts";
import { connectNatsBus } from "./nats-bus.ts";
import type { Registry } from "prom-client";

export interface JoinClusterOptions {
  config: ServerConfig & { natsUrl: string };
  store: Store;
  registry: AgentRegistry;
  limits: WireLimits;
  logger: Logger;
  metrics: Registry;
}

export async function joinCluster(options: JoinClusterOptions) {
  const { config, store, registry, limits } = options;
  const nodeId =
    config.nodeId ??
    os
      .hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .slice(0, 64);
  const logger = options.logger.child({ part: "cluster", node: nodeId });
  const bus = await connectNatsBus({
    servers: config.natsUrl,
    prefix: config.natsSubjectPrefix,
    nodeId,
    logger,
    requestTimeoutMs: config.natsRequestTimeoutMs,
  });
  const metrics = createClusterMetrics(options.metrics, nodeId);
  const channels = createNatsChannels({ bus, registry, limits, logger, counters: metrics.relay });
  let agentDisconnected: (agentId: string, reason: string) => Promise<void> = async () => {};
  let forgetTokens: (what: RevokedTokens) => void = () => {};
  const node = createClusterNode({
    bus,
    store,
    registry,
    logger,
    nodeTtlMs: config.nodeTtlMs,
    agentDisconnected: (agentId, reason) => agentDisconnected(agentId, reason),
    onLiveNodes: (live) => channels.failPeersNotIn(live, (peer) => `server node ${peer} is gone; the relayed channel ended`),
  });
  const router: AgentRouter = createClusterRouter({ registry, bus, channels, ownership: node.ownership, limits, logger });
  bus.onDown(() => channels.failAll(new GuruError("unavailable", "lost the cluster's message bus (NATS); the relayed channel ended")));

  const subs: { unsubscribe(): void }[] = [];
  let control: { close(): void } | undefined;

  return {
    nodeId,
    router,
    node,
    bus,
    /** Joins: reconciles what this node held before, then serves other nodes. */
    async start(deps: { agentDisconnected(agentId: string, reason: string): Promise<void>; forgetTokens(what: RevokedTokens): void }) {
      agentDisconnected = deps.agentDisconnected;
      forgetTokens = deps.forgetTokens;
      await node.start();
      control = serveAgentControl({ registry, bus, limits, logger });
      subs.push(
        channels.serveOpens(),
        bus.nc.subscribe(bus.subject("tokens", "revoked"), {
          callback: (err, msg) => {
            if (!err) forgetTokens(msg.json<RevokedTokens>());
          },
        }),
      );
      metrics.collect(() => ({ agentsPerNode: node.agentsPerNode(), connected: bus.connected }));
      logger.info({ nats: config.natsUrl.replace(/\/\/[^@/]*@/, "//***@") }, "joined the cluster");
    },
    /** Tells every other node a token (or a technician's tokens) was revoked. */
    tokensRevoked(what: RevokedTokens): void {
      if (bus.connected) bus.publishJson(bus.subject("tokens", "revoked"), what);
    },
    /** Why this node is not ready, or undefined. */
    notReady(): string | undefined {
      if (!bus.connected) return "NATS unreachable";
      if (node.draining) return "draining";
      return undefined;
    },
    async close(): Promise<void> {
      control?.close();
      for (const sub of subs) sub.unsubscribe();
      await node.close();
      await bus.close();
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof joinCluster>>;
