// The AgentRouter of a clustered server: an agent whose link is here is
// reached in-process; one whose link is on another node is reached through
// that node over NATS. Control frames are request/reply with timeouts (the
// owner forwards the agent's control frames to the caller until one matches,
// so any request/answer pair works, not just the ones known today); channels
// are relayed by NatsChannels. While NATS is unreachable, calls to agents on
// other nodes fail at once with "unavailable" and local ones go on.
import { randomBytes } from "node:crypto";
import type { Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { decodeFrame, encodeFrame, makeFrame } from "../../lib/wire/codec.ts";
import type { WireLimits } from "../../lib/wire/limits.ts";
import type { NatsBus } from "../cluster/nats-bus.ts";
import { createInProcessRouter, type AgentRegistry, type AgentRouter } from "./agent-router.ts";
import type { NatsChannels } from "./nats-channels.ts";

export interface OwnershipView {
  /** The live node holding the agent's link, if any. */
  ownerOf(agentId: string): string | undefined;
  /** When this node last had word that the owner holds the link (a notice or a reload, at most a heartbeat tick old). */
  confirmedAt(agentId: string): Date | undefined;
}

interface ControlRequest {
  agentId: string;
  /** The control Frame, base64. */
  frame: string;
  /** Where the agent's control frames are forwarded until `${inbox}.done` or the timeout. */
  inbox: string;
  timeoutMs: number;
}

interface ForwardedControl {
  frame?: string;
  closed?: string;
}

const toBase64 = (kind: Frame["kind"]) => Buffer.from(encodeFrame(makeFrame(0, kind))).toString("base64");

export interface ClusterRouterOptions {
  registry: AgentRegistry;
  bus: NatsBus;
  channels: NatsChannels;
  ownership: OwnershipView;
  limits: WireLimits;
  logger: Logger;
}

export function createClusterRouter(options: ClusterRouterOptions): AgentRouter {
  const { registry, bus, channels, ownership, limits } = options;
  const local = createInProcessRouter(registry);
  const me = bus.nodeId;

  /** The other node to go through, or undefined when the link is here (or nowhere). */
  function remoteOwner(agentId: string): string | undefined {
    if (registry.get(agentId) !== undefined) return undefined;
    const owner = ownership.ownerOf(agentId);
    return owner !== undefined && owner !== me ? owner : undefined;
  }

  function requireOwner(agentId: string): string {
    const owner = remoteOwner(agentId);
    if (owner === undefined) throw new GuruError("agent_offline", `agent ${agentId} is not connected`);
    return owner;
  }

  async function remoteRequest(owner: string, agentId: string, kind: Frame["kind"], match: (frame: Frame) => boolean, timeoutMs: number): Promise<Frame> {
    const inbox = bus.subject("ctl", `${me}-${randomBytes(6).toString("hex")}`);
    let settle!: { resolve: (f: Frame) => void; reject: (e: GuruError) => void };
    const answered = new Promise<Frame>((resolve, reject) => (settle = { resolve, reject }));
    const sub = bus.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return;
        const forwarded = msg.json<ForwardedControl>();
        if (forwarded.closed !== undefined) {
          settle.reject(new GuruError("agent_offline", `agent ${agentId} disconnected: ${forwarded.closed}`));
        } else if (forwarded.frame !== undefined) {
          const frame = decodeFrame(Buffer.from(forwarded.frame, "base64"), limits.maxFrameBytes);
          if (match(frame)) settle.resolve(frame);
        }
      },
    });
    const timer = setTimeout(() => settle.reject(new GuruError("timeout", `agent ${agentId} did not answer within ${timeoutMs} ms`)), timeoutMs);
    const downOff = bus.onDown(() => settle.reject(new GuruError("unavailable", `lost the cluster's message bus while waiting for agent ${agentId}`)));
    try {
      const body: ControlRequest = { agentId, frame: toBase64(kind), inbox, timeoutMs };
      await bus.request(bus.subject("node", owner, "control"), body, `sending a ${String(kind.case)} to agent ${agentId} on server node ${owner}`);
      return await answered;
    } finally {
      clearTimeout(timer);
      downOff();
      sub.unsubscribe();
      bus.publishJson(`${inbox}.done`, {});
    }
  }

  return {
    isOnline: (agentId) => local.isOnline(agentId) || remoteOwner(agentId) !== undefined,
    lastSeen: (agentId) => local.lastSeen(agentId) ?? (remoteOwner(agentId) === undefined ? undefined : ownership.confirmedAt(agentId)),
    openChannel(agentId, open, channelOptions) {
      if (registry.get(agentId) !== undefined) return local.openChannel(agentId, open, channelOptions);
      const owner = requireOwner(agentId);
      return channels.open(owner, agentId, open, channelOptions?.bulk ?? (open.request.case === "fileRead" || open.request.case === "fileWrite"));
    },
    request(agentId, kind, match, timeoutMs) {
      if (registry.get(agentId) !== undefined) return local.request(agentId, kind, match, timeoutMs);
      try {
        return remoteRequest(requireOwner(agentId), agentId, kind, match, timeoutMs);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    notify(agentId, kind) {
      if (local.notify(agentId, kind)) return true;
      const owner = remoteOwner(agentId);
      if (owner === undefined || !bus.connected) return false;
      bus.publishJson(bus.subject("node", owner, "notify"), { agentId, frame: toBase64(kind) });
      return true;
    },
    disconnect(agentId, code, reason) {
      if (registry.get(agentId) !== undefined) return local.disconnect(agentId, code, reason);
      const owner = remoteOwner(agentId);
      if (owner !== undefined) bus.publishJson(bus.subject("node", owner, "disconnect"), { agentId, code, reason });
    },
  };
}

/** The owner's side of the control path: what other nodes ask of the links held here. */
export function serveAgentControl(options: { registry: AgentRegistry; bus: NatsBus; limits: WireLimits; logger: Logger }) {
  const { registry, bus, limits, logger } = options;
  const me = bus.nodeId;
  const subs = [
    bus.serve<ControlRequest>(bus.subject("node", me, "control"), (req) => {
      const entry = registry.get(req.agentId);
      if (entry === undefined) throw new GuruError("agent_offline", `agent ${req.agentId} is not connected to server node ${me}`);
      const frame = decodeFrame(Buffer.from(req.frame, "base64"), limits.maxFrameBytes);
      const forward = (f: Frame) => {
        bus.publishJson(req.inbox, { frame: Buffer.from(encodeFrame(f)).toString("base64") } satisfies ForwardedControl);
        // Not consumed: a waiter on this node for the same frame still gets it.
        return false;
      };
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        entry.waiters.delete(forward);
        doneSub.unsubscribe();
      };
      const timer = setTimeout(end, req.timeoutMs);
      const doneSub = bus.nc.subscribe(`${req.inbox}.done`, { max: 1, callback: end });
      void entry.link.closed.then(({ reason }) => {
        if (!ended) bus.publishJson(req.inbox, { closed: reason || "link closed" } satisfies ForwardedControl);
        end();
      });
      entry.waiters.add(forward);
      entry.link.sendControl(frame.kind);
      return { ok: true };
    }),
    bus.nc.subscribe(bus.subject("node", me, "notify"), {
      callback: (err, msg) => {
        if (err) return;
        const { agentId, frame } = msg.json<{ agentId: string; frame: string }>();
        registry.get(agentId)?.link.sendControl(decodeFrame(Buffer.from(frame, "base64"), limits.maxFrameBytes).kind);
      },
    }),
    bus.nc.subscribe(bus.subject("node", me, "disconnect"), {
      callback: (err, msg) => {
        if (err) return;
        const { agentId, code, reason } = msg.json<{ agentId: string; code: number; reason: string }>();
        const entry = registry.get(agentId);
        if (entry === undefined) return;
        logger.info({ agentId, reason }, "closing an agent link at another node's request");
        entry.link.close(code || closeCodes.revoked, reason);
      },
    }),
  ];
  return {
    close() {
      for (const sub of subs) sub.unsubscribe();
    },
  };
}
