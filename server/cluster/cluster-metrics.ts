// Cluster metrics: agents per node (as this node sees ownership), channels
// relayed through NATS and the bytes they moved, and NATS reachability.
import { Counter, Gauge, type Registry } from "prom-client";
import type { RelayCounters } from "../link/nats-channels.ts";

export function createClusterMetrics(registry: Registry, nodeId: string) {
  let source: (() => { agentsPerNode: Map<string, number>; connected: boolean }) | undefined;
  new Gauge({
    name: "guru_cluster_agents",
    help: "agent links held by each live cluster node",
    labelNames: ["node"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [node, count] of source?.().agentsPerNode ?? []) this.set({ node }, count);
    },
  });
  new Gauge({
    name: "guru_cluster_nats_connected",
    help: "1 when this node's NATS connection is up",
    labelNames: ["node"] as const,
    registers: [registry],
    collect() {
      this.set({ node: nodeId }, source?.().connected ? 1 : 0);
    },
  });
  const relayed = new Gauge({
    name: "guru_relayed_channels",
    help: "operation channels relayed between nodes, open now, by this node's role (caller or owner)",
    labelNames: ["node", "role"] as const,
    registers: [registry],
  });
  const relayBytes = new Counter({
    name: "guru_relay_bytes_total",
    help: "bytes of wire frames this node sent to or received from other nodes",
    labelNames: ["node", "direction"] as const,
    registers: [registry],
  });
  const relay: RelayCounters = {
    channels: (role, delta) => relayed.inc({ node: nodeId, role }, delta),
    bytes: (direction, bytes) => relayBytes.inc({ node: nodeId, direction }, bytes),
  };
  return {
    relay,
    collect(fn: typeof source) {
      source = fn;
    },
  };
}
