// The agent runtime: one link to the server, redialled forever with capped,
// jittered backoff; heartbeat mode until the server opens a tunnel; each
// operation on a channel of its own.
import { hostname, platform, release, arch } from "node:os";
import { create } from "@bufbuild/protobuf";
import { HelloSchema, TunnelClosedSchema, TunnelReadySchema, type ChannelOpen, type Frame } from "../gen/guru/wire/v1/wire_pb.js";
import { toGuruError } from "../lib/errors.ts";
import type { Logger } from "../lib/logging.ts";
import { version } from "../lib/version.ts";
import { wsFrameSocket } from "../lib/wire/frame-socket.ts";
import { defaultWireLimits, wsMaxPayloadBytes, type WireLimits } from "../lib/wire/limits.ts";
import { createLink, type Channel, type Link } from "../lib/wire/link.ts";
import { createReconnectBackoff } from "./link/backoff.ts";
import { dialServer, retryAfterMsOf } from "./link/dial.ts";
import { dispatchChannel, type HandlerContext } from "./handlers/dispatch.ts";
import { createSessionChannels, sessionOf } from "./session-channels.ts";
import { createTunnelState } from "./tunnel-state.ts";

export interface AgentOptions {
  serverUrl: string;
  key: string;
  logger: Logger;
  handlers: Omit<HandlerContext, "tunnel" | "logger">;
  capabilities: string[];
  limits?: Partial<WireLimits>;
  backoff?: { maxMs: number; spreadMs?: number };
  dialTimeoutMs?: number;
}

export interface RunningAgent {
  /** Resolves when the agent has a link and the server's HelloAck. */
  whenConnected(): Promise<void>;
  readonly connected: boolean;
  close(): Promise<void>;
}

export function startAgent(options: AgentOptions): RunningAgent {
  const { logger } = options;
  const limits = { ...defaultWireLimits, ...options.limits };
  const backoff = createReconnectBackoff(options.backoff ?? { maxMs: 60_000 });
  const tunnel = createTunnelState();
  const sessionChannels = createSessionChannels();
  let link: Link | undefined;
  let connected = false;
  let stopped = false;
  let connectedWaiters: (() => void)[] = [];
  let sleepTimer: NodeJS.Timeout | undefined;
  let wakeSleep: (() => void) | undefined;

  const ctx: HandlerContext = { ...options.handlers, tunnel, logger };

  function onControl(current: Link, frame: Frame): void {
    switch (frame.kind.case) {
      case "helloAck": {
        const ack = frame.kind.value;
        current.setPeerLimits({ initialWindowBytes: ack.initialWindowBytes, maxFrameBytes: ack.maxFrameBytes });
        current.setHeartbeat?.({ intervalMs: ack.heartbeatIntervalMs, deadlineMs: ack.heartbeatDeadlineMs, send: true });
        connected = true;
        backoff.connected();
        logger.info({ agentId: ack.agentId, serverVersion: ack.serverVersion }, "connected to the server");
        for (const w of connectedWaiters) w();
        connectedWaiters = [];
        return;
      }
      case "tunnelOpen": {
        const req = frame.kind.value;
        const result = tunnel.open({ sessionId: req.sessionId, technicianId: req.technicianId, technicianName: req.technicianName });
        if (result.ok) logger.info({ sessionId: req.sessionId, technician: req.technicianName }, "tunnel mode");
        else logger.warn({ sessionId: req.sessionId, reason: result.reason }, "refused a second tunnel");
        current.sendControl({
          case: "tunnelReady",
          value: create(TunnelReadySchema, { sessionId: req.sessionId, refusedReason: result.ok ? "" : result.reason }),
        });
        return;
      }
      case "tunnelClose": {
        const { sessionId, reason } = frame.kind.value;
        if (tunnel.close(sessionId)) logger.info({ sessionId, reason }, "heartbeat mode");
        // Whatever still runs for the tunnel ends with it, even if the server's own cancel was lost.
        const aborted = sessionChannels.abortSession(sessionId, reason || "closed by the server");
        if (aborted > 0) logger.info({ sessionId, operations: aborted }, "ended the tunnel's operations");
        current.sendControl({ case: "tunnelClosed", value: create(TunnelClosedSchema, { sessionId }) });
        return;
      }
      default:
        logger.debug({ kind: frame.kind.case }, "ignored control frame");
    }
  }

  function onChannelOpen(channel: Channel, open: ChannelOpen): void {
    const sessionId = sessionOf(open);
    if (sessionId !== undefined) sessionChannels.add(sessionId, channel);
    void dispatchChannel(channel, open, ctx).catch((err) => {
      const error = toGuruError(err);
      if (error.kind === "internal") logger.error({ err, channel: channel.id }, "operation failed");
      channel.sendError(error);
    });
  }

  async function connectOnce(): Promise<void> {
    const ws = await dialServer({
      serverUrl: options.serverUrl,
      key: options.key,
      maxPayloadBytes: wsMaxPayloadBytes(limits),
      timeoutMs: options.dialTimeoutMs ?? 10_000,
    });
    const current: Link = createLink({
      socket: wsFrameSocket(ws),
      role: "agent",
      limits,
      logger,
      onControl: (frame) => onControl(current, frame),
      onChannelOpen,
    });
    link = current;
    current.sendControl({
      case: "hello",
      value: create(HelloSchema, {
        agentVersion: version,
        inventory: { hostname: hostname(), os: platform(), osRelease: release(), arch: arch() },
        capabilities: options.capabilities,
        initialWindowBytes: limits.initialWindowBytes,
        maxFrameBytes: limits.maxFrameBytes,
      }),
    });
    const { code, reason } = await current.closed;
    if (connected) backoff.linkLost();
    else backoff.failed();
    connected = false;
    link = undefined;
    if (tunnel.close()) logger.info("left tunnel mode: the link closed");
    if (!stopped) logger.warn({ code, reason }, "link to the server closed");
  }

  async function run(): Promise<void> {
    while (!stopped) {
      try {
        await connectOnce();
      } catch (err) {
        logger.warn({ reason: (err as Error).message }, "could not connect to the server");
        backoff.failed(retryAfterMsOf(err));
      }
      if (stopped) break;
      const delayMs = backoff.nextDelayMs();
      logger.info({ delayMs }, "reconnecting after a pause");
      await new Promise<void>((resolve) => {
        wakeSleep = resolve;
        sleepTimer = setTimeout(resolve, delayMs);
      });
    }
  }

  const running = run();

  return {
    get connected() {
      return connected;
    },
    whenConnected() {
      if (connected) return Promise.resolve();
      return new Promise((resolve) => connectedWaiters.push(resolve));
    },
    async close() {
      stopped = true;
      clearTimeout(sleepTimer);
      wakeSleep?.();
      link?.close(1000, "agent stopping");
      await running;
    },
  };
}
