// One agent's link from Hello to close: negotiates limits, registers the link
// (replacing an older one of the same agent), keeps the agent's status in the
// database, and ends its sessions when the link goes.
import { create } from "@bufbuild/protobuf";
import type { WebSocket } from "ws";
import { HelloAckSchema, type Frame, type Hello } from "../../gen/guru/wire/v1/wire_pb.js";
import type { Logger } from "../../lib/logging.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { wsFrameSocket } from "../../lib/wire/frame-socket.ts";
import type { WireLimits } from "../../lib/wire/limits.ts";
import { createLink } from "../../lib/wire/link.ts";
import type { Store } from "../store/index.ts";
import type { AgentRecord } from "../store/agents.ts";
import type { AgentLinkEntry, AgentRegistry } from "./agent-router.ts";
import type { AgentStatusWriter } from "./agent-status-writer.ts";

export interface AgentConnectionOptions {
  /** Only what the link needs of the agent: it is kept for the link's lifetime, times thousands. */
  agent: Pick<AgentRecord, "id" | "name">;
  store: Store;
  /** Online/offline marks, written in groups. */
  statusWriter: AgentStatusWriter;
  registry: AgentRegistry;
  limits: WireLimits;
  logger: Logger;
  serverVersion: string;
  handshakeTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatDeadlineMs: number;
  /** The link is gone (or replaced): end the agent's sessions. */
  onDisconnected(agentId: string, reason: string): Promise<void>;
}

/** Runs the link; the returned promise settles once the link is gone and its cleanup (status, sessions) is written. */
export function startAgentConnection(ws: WebSocket, options: AgentConnectionOptions): Promise<void> {
  const { agent, registry, logger } = options;
  let entry: AgentLinkEntry | undefined;

  const link = createLink({
    socket: wsFrameSocket(ws),
    role: "server",
    limits: options.limits,
    logger,
    heartbeat: { intervalMs: options.heartbeatIntervalMs, deadlineMs: options.heartbeatDeadlineMs, send: false },
    onControl(frame: Frame) {
      if (entry === undefined) {
        if (frame.kind.case === "hello") void onHello(frame.kind.value);
        else link.close(closeCodes.protocolError, "the first frame must be Hello");
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
    const inventory = hello.inventory;
    link.setPeerLimits({
      initialWindowBytes: hello.initialWindowBytes || options.limits.initialWindowBytes,
      maxFrameBytes: Math.min(hello.maxFrameBytes || options.limits.maxFrameBytes, options.limits.maxFrameBytes),
    });
    const candidate: AgentLinkEntry = { agentId: agent.id, name: agent.name, link, waiters: new Set() };
    const previous = registry.get(agent.id);
    if (previous !== undefined) {
      // One agent identity, one link: the newer connection wins, and what the
      // old one held (its tunnel) ends with it.
      registry.remove(previous);
      previous.link.close(closeCodes.replaced, "replaced by a newer connection of the same agent");
      await options.onDisconnected(agent.id, "agent reconnected");
    }
    try {
      await options.statusWriter.online(agent.id, {
        hostname: inventory?.hostname ?? "",
        os: inventory?.os ?? "",
        osRelease: inventory?.osRelease ?? "",
        arch: inventory?.arch ?? "",
        agentVersion: hello.agentVersion,
        capabilities: hello.capabilities,
      });
    } catch (err) {
      logger.error({ err }, "could not record the agent as online");
      link.close(closeCodes.internalError, "the server could not record the agent");
      return;
    }
    if (linkClosed) return;
    entry = candidate;
    registry.set(entry);
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
    logger.info({ version: hello.agentVersion, hostname: inventory?.hostname, os: inventory?.os }, "agent connected");
  }

  let linkClosed = false;
  return link.closed.then(async ({ code, reason }) => {
    linkClosed = true;
    clearTimeout(helloTimer);
    if (entry === undefined || !registry.remove(entry)) return;
    const why = reason || `link closed (code ${code})`;
    logger.info({ code, reason }, "agent disconnected");
    try {
      // Its tunnels end at once; the offline mark goes with the next group write.
      await Promise.all([options.onDisconnected(agent.id, `agent disconnected: ${why}`), options.statusWriter.offline(agent.id)]);
    } catch (err) {
      logger.error({ err }, "could not record the agent's disconnect");
    }
  });
}
