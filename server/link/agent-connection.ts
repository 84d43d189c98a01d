// One agent's link from Hello to close: checks the Hello, checks the key
// again, negotiates limits, registers the link (replacing an older one of the
// same agent), keeps the agent's status in the database, and ends its
// sessions when the link goes. Whatever the agent sends, the worst outcome is
// that this one link closes.
import { create } from "@bufbuild/protobuf";
import type { WebSocket } from "ws";
import { HelloAckSchema, LinkErrorCode, type Frame, type Hello } from "../../gen/guru/wire/v1/wire_pb.js";
import type { Logger } from "../../lib/logging.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { wsFrameSocket } from "../../lib/wire/frame-socket.ts";
import { checkHello } from "../../lib/wire/hello-check.ts";
import type { WireLimits } from "../../lib/wire/limits.ts";
import { createLink } from "../../lib/wire/link.ts";
import type { LinkChurnAlerts } from "../domain/alerts.ts";
import type { AgentRecord } from "../store/agents.ts";
import type { AgentKeyLookup } from "./agent-key-lookup.ts";
import type { AgentLinkEntry, AgentRegistry } from "./agent-router.ts";
import type { AgentStatusWriter } from "./agent-status-writer.ts";
import { effectiveCapabilities } from "./system-support.ts";

export interface AgentConnectionOptions {
  /** Only what the link needs of the agent: it is kept for the link's lifetime, times thousands. */
  agent: Pick<AgentRecord, "id" | "name">;
  /** The hash of the key the agent authenticated with at the upgrade; checked again after its Hello. */
  keyHash: string;
  /** Key checks batched with the upgrades' own (a reconnect storm is one query per batch, not per agent). */
  keyLookup: AgentKeyLookup;
  /** Online/offline marks, written in groups. */
  statusWriter: AgentStatusWriter;
  registry: AgentRegistry;
  limits: WireLimits;
  logger: Logger;
  serverVersion: string;
  handshakeTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatDeadlineMs: number;
  /** Told each time this agent's link replaces an older one. */
  churn?: Pick<LinkChurnAlerts, "linkReplaced">;
  /** The link is gone (or replaced): end the agent's sessions. */
  onDisconnected(agentId: string, reason: string): Promise<void>;
  /** The agent's Hello, before its link is registered (record what it said about consent). */
  onHello?(agentId: string, hello: Hello): Promise<void>;
  /** The link is registered and acknowledged (bind sessions waiting for the agent). */
  onConnected?(agentId: string): void;
  /** Clustered: which node holds the agent's link, so a link that moved to another node does not mark the agent offline here. */
  ownership?: {
    claim(agentId: string): Promise<void>;
    /** Marks the agent offline if this node still owns it; false when it moved. */
    release(agentId: string): Promise<boolean>;
  };
}

/** Runs the link; the returned promise settles once the link is gone and its cleanup (status, sessions) is written. */
export function startAgentConnection(ws: WebSocket, options: AgentConnectionOptions): Promise<void> {
  const { agent, registry, logger } = options;
  let entry: AgentLinkEntry | undefined;
  let helloSeen = false;
  let linkClosed = false;

  const link = createLink({
    socket: wsFrameSocket(ws),
    role: "server",
    limits: options.limits,
    logger,
    heartbeat: { intervalMs: options.heartbeatIntervalMs, deadlineMs: options.heartbeatDeadlineMs, send: false },
    onControl(frame: Frame) {
      if (frame.kind.case === "hello") {
        if (helloSeen) {
          link.fail(LinkErrorCode.PROTOCOL_VIOLATION, "a second Hello on the same link", closeCodes.protocolError);
          return;
        }
        helloSeen = true;
        onHello(frame.kind.value).catch((err: unknown) => {
          logger.error({ err }, "agent handshake failed");
          link.close(closeCodes.internalError, "the server could not complete the handshake");
        });
        return;
      }
      if (entry === undefined) {
        if (!helloSeen) link.fail(LinkErrorCode.PROTOCOL_VIOLATION, `the first frame must be Hello, not ${String(frame.kind.case)}`, closeCodes.protocolError);
        else logger.debug({ kind: frame.kind.case }, "control frame before the HelloAck ignored");
        return;
      }
      for (const waiter of entry.waiters) if (waiter(frame)) return;
      if (frame.kind.case === "tunnelClosed") logger.debug({ sessionId: frame.kind.value.sessionId }, "agent left tunnel mode");
      else logger.debug({ kind: frame.kind.case }, "control frame nobody waited for");
    },
  });

  const helloTimer = setTimeout(() => {
    logger.warn({ timeoutMs: options.handshakeTimeoutMs }, "agent sent no Hello in time");
    link.close(closeCodes.handshakeTimeout, `no Hello within ${options.handshakeTimeoutMs} ms`);
  }, options.handshakeTimeoutMs);

  async function onHello(hello: Hello): Promise<void> {
    clearTimeout(helloTimer);
    const problem = checkHello(hello);
    if (problem !== undefined) {
      link.fail(LinkErrorCode.PROTOCOL_VIOLATION, `Hello refused: ${problem.message}`, closeCodes.policyViolation);
      return;
    }
    const inventory = hello.inventory;
    link.setPeerLimits({
      initialWindowBytes: hello.initialWindowBytes,
      maxFrameBytes: Math.min(hello.maxFrameBytes, options.limits.maxFrameBytes),
    });
    // The key was checked at the upgrade; it may have been revoked (or
    // replaced) since. Ask again before this link can displace another.
    const current = await options.keyLookup.find(options.keyHash);
    if (linkClosed) return;
    if (current === undefined || current.id !== agent.id || current.revokedAt !== null) {
      logger.warn({ revoked: current?.revokedAt != null }, "agent link refused after its Hello: the key is no longer valid");
      link.close(closeCodes.revoked, `the key of agent ${agent.name} was revoked or replaced; enrol the agent again`);
      return;
    }
    const candidate: AgentLinkEntry = { agentId: agent.id, name: agent.name, link, waiters: new Set() };
    const previous = registry.get(agent.id);
    if (previous !== undefined) await displace(previous);
    try {
      await options.statusWriter.online(agent.id, {
        hostname: inventory?.hostname ?? "",
        os: inventory?.os ?? "",
        osRelease: inventory?.osRelease ?? "",
        arch: inventory?.arch ?? "",
        agentVersion: hello.agentVersion,
        capabilities: effectiveCapabilities(hello),
        wireFeatures: hello.features,
      });
      await options.onHello?.(agent.id, hello);
      await options.ownership?.claim(agent.id);
    } catch (err) {
      logger.error({ err }, "could not record the agent as online");
      link.close(closeCodes.internalError, "the server could not record the agent");
      return;
    }
    if (linkClosed) {
      // Gone while we recorded it: the other nodes must not go on routing to this node.
      await options.ownership?.release(agent.id).catch((err: unknown) => logger.error({ err }, "could not release the agent"));
      return;
    }
    entry = candidate;
    // Two links of one agent can pass their Hellos at once (two processes
    // with one key): whichever registers last displaces the other here too.
    const raced = registry.set(entry);
    if (raced !== undefined && raced !== entry) await displace(raced);
    link.sendControl({
      case: "helloAck",
      value: create(HelloAckSchema, {
        agentId: agent.id,
        serverVersion: options.serverVersion,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        heartbeatDeadlineMs: options.heartbeatDeadlineMs,
        initialWindowBytes: options.limits.initialWindowBytes,
        maxFrameBytes: options.limits.maxFrameBytes,
      }),
    });
    logger.info({ version: hello.agentVersion, hostname: inventory?.hostname, os: inventory?.os, serviceManager: hello.serviceManager }, "agent connected");
    options.onConnected?.(agent.id);
  }

  /** One agent identity, one link: the newer connection wins, and what the old one held (its tunnel) ends with it. */
  async function displace(previous: AgentLinkEntry): Promise<void> {
    registry.remove(previous);
    previous.link.close(closeCodes.replaced, "replaced by a newer connection of the same agent");
    await options.churn?.linkReplaced({ id: agent.id, name: agent.name });
    await options.onDisconnected(agent.id, "agent reconnected");
  }

  return link.closed.then(async ({ code, reason }) => {
    linkClosed = true;
    clearTimeout(helloTimer);
    if (entry === undefined || !registry.remove(entry)) return;
    const why = reason || `link closed (code ${code})`;
    logger.info({ code, reason }, "agent disconnected");
    try {
      if (options.ownership) {
        // Clustered: a link that ends after its agent moved to another node changes nothing here.
        if (await options.ownership.release(agent.id)) await options.onDisconnected(agent.id, `agent disconnected: ${why}`);
      } else {
        // Its tunnels end at once; the offline mark goes with the next group write.
        await Promise.all([options.onDisconnected(agent.id, `agent disconnected: ${why}`), options.statusWriter.offline(agent.id)]);
      }
    } catch (err) {
      logger.error({ err }, "could not record the agent's disconnect");
    }
  });
}
