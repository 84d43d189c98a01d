// This process as one node of a cluster: its heartbeat row, which node holds
// each agent's link (PostgreSQL is the truth, NATS notices make changes
// visible at once, a periodic reload repairs anything missed), taking an
// agent over from another node, and clearing up after nodes that died.
import { randomUUID } from "node:crypto";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import type { AgentRegistry } from "../link/agent-router.ts";
import type { OwnershipView } from "../link/nats-router.ts";
import type { Store } from "../store/index.ts";
import type { NatsBus } from "./nats-bus.ts";

export interface ClusterNodeOptions {
  bus: NatsBus;
  store: Store;
  registry: AgentRegistry;
  logger: Logger;
  nodeTtlMs: number;
  /** Ends the agent's tunnels (its link is gone, or moved). */
  agentDisconnected(agentId: string, reason: string): Promise<void>;
  /** Live nodes changed: relayed channels to nodes no longer in the set fail. */
  onLiveNodes?(live: ReadonlySet<string>): void;
}

interface OwnerNotice {
  agentId: string;
  nodeId: string;
  online: boolean;
}

export function createClusterNode(options: ClusterNodeOptions) {
  const { bus, store, registry, logger, nodeTtlMs } = options;
  const repo = store.clusterNodes;
  const me = bus.nodeId;
  const incarnation = randomUUID();
  /** agent id → the node holding its link, and when that was last confirmed (a notice or a reload). */
  const owners = new Map<string, { nodeId: string; at: number }>();
  let live = new Set<string>([me]);
  const draining = { value: false };
  /** When this node claimed each agent: a link claimed after a reload began is newer than what the reload read. */
  const claimedAt = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  const subs: { unsubscribe(): void }[] = [];

  const ownership: OwnershipView = {
    ownerOf(agentId) {
      const owner = owners.get(agentId);
      return owner !== undefined && live.has(owner.nodeId) ? owner.nodeId : undefined;
    },
    confirmedAt(agentId) {
      const owner = owners.get(agentId);
      return owner !== undefined && live.has(owner.nodeId) ? new Date(owner.at) : undefined;
    },
  };

  function applyNotice(n: OwnerNotice): void {
    if (n.online) owners.set(n.agentId, { nodeId: n.nodeId, at: Date.now() });
    else if (owners.get(n.agentId)?.nodeId === n.nodeId) owners.delete(n.agentId);
  }

  function notice(agentId: string, online: boolean): void {
    const n: OwnerNotice = { agentId, nodeId: me, online };
    applyNotice(n);
    if (bus.connected) bus.publishJson(bus.subject("owners"), n);
  }

  /** At start: refuse a node id another live process uses, join, and end what this node's previous process held. */
  async function start(): Promise<void> {
    const answer = await bus.request<{ incarnation: string }>(bus.subject("node", me, "ping"), {}, "checking the node id", 750).catch(() => undefined);
    if (answer !== undefined) {
      throw new GuruError("conflict", `server node id "${me}" is in use by another running server; give each node its own --node-id (GURU_NODE_ID)`);
    }
    await repo.register(me, incarnation);
    const left = await repo.releaseAll(me);
    for (const agentId of left) await options.agentDisconnected(agentId, "server restarted");
    if (left.length > 0) logger.info({ agents: left.length }, "closed tunnels of agents this node held before it restarted");
    subs.push(
      bus.serve(bus.subject("node", me, "ping"), () => ({ incarnation })),
      bus.nc.subscribe(bus.subject("owners"), {
        callback: (err, msg) => {
          if (!err) applyNotice(msg.json<OwnerNotice>());
        },
      }),
      bus.serve<{ agentId: string; by: string }>(bus.subject("node", me, "release"), async ({ agentId, by }) => {
        const entry = registry.get(agentId);
        if (entry === undefined) return { released: false };
        // Unregistered first, so this link's end does not touch the agent's state: the new owner has it.
        registry.remove(entry);
        claimedAt.delete(agentId);
        entry.link.close(closeCodes.replaced, `replaced by a newer connection of the same agent on server node ${by}`);
        await entry.link.closed;
        logger.info({ agentId, by }, "agent moved to another node");
        return { released: true };
      }),
    );
    await tick();
    timer = setInterval(
      () => {
        ticking ??= tick().finally(() => (ticking = undefined));
      },
      Math.max(200, Math.floor(nodeTtlMs / 5)),
    );
    timer.unref();
  }

  async function tick(): Promise<void> {
    try {
      if (!(await repo.heartbeat(me, incarnation, draining.value))) {
        // The others took us for dead (a long pause) and ended our agents' state: take it back.
        logger.warn("this node's heartbeat row was gone; rejoining and reclaiming its agent links");
        await repo.register(me, incarnation);
        for (const entry of registry.all()) await repo.claim(entry.agentId, me);
      }
      for (const dead of await repo.expire(nodeTtlMs)) {
        const agents = await repo.releaseAll(dead);
        logger.warn({ node: dead, agents: agents.length }, "a server node stopped answering; closing its agents' tunnels");
        for (const agentId of agents)
          await options.agentDisconnected(agentId, `server node ${dead} stopped answering (no heartbeat for ${nodeTtlMs} ms); the agent's link was lost`);
      }
      for (const agentId of await repo.orphanedSessionAgents()) {
        await options.agentDisconnected(agentId, "no live server node holds the agent's link");
      }
      await reload();
    } catch (err) {
      logger.error({ err }, "cluster heartbeat failed");
    }
  }

  async function reload(): Promise<void> {
    const startedAt = Date.now();
    const [rows, nodes] = await Promise.all([repo.owners(), repo.liveNodes()]);
    live = new Set(nodes.map((n) => n.nodeId));
    live.add(me);
    owners.clear();
    const at = Date.now();
    for (const row of rows) owners.set(row.agentId, { nodeId: row.nodeId, at });
    for (const entry of registry.all()) {
      const owner = owners.get(entry.agentId)?.nodeId;
      const claimed = claimedAt.get(entry.agentId) ?? 0;
      if (owner === me || claimed >= startedAt) {
        owners.set(entry.agentId, { nodeId: me, at });
        continue;
      }
      if (owner === undefined) {
        await repo.claim(entry.agentId, me);
        owners.set(entry.agentId, { nodeId: me, at });
      } else {
        // Another node claimed the agent and its notice never reached us: this link is the stale one.
        registry.remove(entry);
        entry.link.close(closeCodes.replaced, `replaced by a newer connection of the same agent on server node ${owner}`);
      }
    }
    options.onLiveNodes?.(live);
  }

  /**
   * The agent's Hello arrived here: record this node as its owner. If another
   * node held it, that node drops its link and the agent's tunnels end, as
   * when an agent reconnects to the same node.
   */
  async function claim(agentId: string): Promise<void> {
    claimedAt.set(agentId, Date.now());
    const previous = await repo.claim(agentId, me);
    notice(agentId, true);
    if (previous === null || previous === me) return;
    if (live.has(previous) && bus.connected) {
      await bus
        .request(bus.subject("node", previous, "release"), { agentId, by: me }, `moving agent ${agentId} from server node ${previous}`)
        .catch((err: unknown) => {
          logger.warn({ err, agentId, previous }, "the previous owner did not confirm it dropped the agent's link");
        });
    }
    await options.agentDisconnected(agentId, "agent reconnected");
  }

  /** The agent's link here ended: it goes offline only if this node still owned it. */
  async function release(agentId: string): Promise<boolean> {
    claimedAt.delete(agentId);
    const released = await repo.release(agentId, me);
    if (released) notice(agentId, false);
    return released;
  }

  return {
    nodeId: me,
    ownership,
    start,
    claim,
    release,
    /** Agents per node, as this node sees them. */
    agentsPerNode(): Map<string, number> {
      const counts = new Map<string, number>([...live].map((n) => [n, 0]));
      for (const { nodeId } of owners.values()) if (live.has(nodeId)) counts.set(nodeId, (counts.get(nodeId) ?? 0) + 1);
      return counts;
    },
    get draining() {
      return draining.value;
    },
    setDraining(value: boolean) {
      draining.value = value;
    },
    async close(): Promise<void> {
      clearInterval(timer);
      await ticking;
      for (const sub of subs) sub.unsubscribe();
      const left = await repo.releaseAll(me);
      for (const agentId of left) await options.agentDisconnected(agentId, "server shut down");
      await repo.leave(me, incarnation);
    },
  };
}

export type ClusterNode = ReturnType<typeof createClusterNode>;
