// The agent runtime: one link to the server, redialled forever with capped,
// jittered backoff; heartbeat mode until the server opens a tunnel; each
// operation on a channel of its own.
import { hostname, platform, release, arch } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConsentMode, ConsentResponseSchema } from "../gen/guru/wire/v1/consent_pb.js";
import { HelloSchema, LinkErrorCode, TunnelClosedSchema, TunnelReadySchema, type ChannelOpen, type Frame } from "../gen/guru/wire/v1/wire_pb.js";
import { toGuruError } from "../lib/errors.ts";
import type { Logger } from "../lib/logging.ts";
import { version } from "../lib/version.ts";
import { closeCodes } from "../lib/wire/close-codes.ts";
import { checkHelloAck } from "../lib/wire/hello-check.ts";
import { agentWireFeatures } from "../lib/wire/features.ts";
import { defaultWireLimits, wsMaxPayloadBytes, type WireLimits } from "../lib/wire/limits.ts";
import { createLink, type Channel, type Link } from "../lib/wire/link.ts";
import { dialServer, retryAfterMsOf } from "./link/dial.ts";
import { createReconnectDelay } from "./link/reconnect-delay.ts";
import { dispatchChannel, type HandlerContext } from "./handlers/dispatch.ts";
import { createSessionChannels, sessionOf } from "./session-channels.ts";
import { createTunnelState } from "./tunnel-state.ts";
import type { ConsentHandler } from "./consent/consent-handler.ts";
import type { LocalPolicy } from "./policy/local-policy.ts";

export interface AgentOptions {
  serverUrl: string;
  key: string;
  logger: Logger;
  handlers: Omit<HandlerContext, "tunnel" | "logger">;
  capabilities: string[];
  limits?: Partial<WireLimits>;
  backoff?: { maxMs: number; spreadMs?: number };
  /** The shortest pause after the server replaced this agent's link with another connection using its key. */
  replacedBackoffMs?: number;
  dialTimeoutMs?: number;
  /** Attended sessions: how the local policy answers, and the handler that asks. */
  consent?: { policy: LocalPolicy["consent"]; handler: ConsentHandler };
}

const consentModeOnWire = { ask: ConsentMode.ASK, "auto-approve": ConsentMode.AUTO_APPROVE, deny: ConsentMode.DENY } as const;

export interface RunningAgent {
  readonly connected: boolean;
  close(): Promise<void>;
}

export function startAgent(options: AgentOptions): RunningAgent {
  const { logger } = options;
  const limits = { ...defaultWireLimits, ...options.limits };
  const backoff = createReconnectDelay({
    backoff: options.backoff ?? { maxMs: 60_000 },
    replacedMinMs: options.replacedBackoffMs ?? 60_000,
  });
  const tunnel = createTunnelState();
  const sessionChannels = createSessionChannels();
  let link: Link | undefined;
  let connected = false;
  let stopped = false;
  let sleepTimer: NodeJS.Timeout | undefined;
  let wakeSleep: (() => void) | undefined;

  const ctx: HandlerContext = { ...options.handlers, tunnel, logger };

  function onControl(current: Link, frame: Frame): void {
    switch (frame.kind.case) {
      case "helloAck": {
        const ack = frame.kind.value;
        const problem = checkHelloAck(ack);
        if (problem !== undefined) {
          current.fail(LinkErrorCode.PROTOCOL_VIOLATION, `HelloAck refused: ${problem.message}`, closeCodes.policyViolation);
          return;
        }
        current.setPeerLimits({ initialWindowBytes: ack.initialWindowBytes, maxFrameBytes: ack.maxFrameBytes });
        current.setHeartbeat?.({ intervalMs: ack.heartbeatIntervalMs, deadlineMs: ack.heartbeatDeadlineMs, send: true });
        connected = true;
        backoff.connected();
        logger.info({ agentId: ack.agentId, serverVersion: ack.serverVersion }, "connected to the server");
        return;
      }
      case "consentAsk": {
        const req = frame.kind.value;
        const sessionId = req.sessionId;
        const asked = options.consent?.handler.handle({ ...req, expiresAt: req.expiresAt ? timestampDate(req.expiresAt) : new Date() });
        void (asked ?? Promise.resolve({ approved: false, responder: "", reason: "this agent has no consent handler", timedOut: false })).then((answer) => {
          if (link === current) current.sendControl({ case: "consentAnswer", value: create(ConsentResponseSchema, { sessionId, ...answer }) });
        });
        return;
      }
      case "tunnelOpen": {
        const req = frame.kind.value;
        const consent = options.consent?.handler.tunnel(req.sessionId) ?? { ok: true as const };
        if (!consent.ok) {
          logger.warn({ sessionId: req.sessionId, reason: consent.reason }, "refused a tunnel nobody approved");
          current.sendControl({ case: "tunnelReady", value: create(TunnelReadySchema, { sessionId: req.sessionId, refusedReason: consent.reason }) });
          return;
        }
        const result = tunnel.open({
          sessionId: req.sessionId,
          technicianId: req.technicianId,
          technicianName: req.technicianName,
          capabilities: consent.capabilities,
        });
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
        options.consent?.handler.forget(sessionId);
        if (tunnel.close(sessionId)) logger.info({ sessionId, reason }, "heartbeat mode");
        // Whatever still runs for the tunnel ends with it, even if the server's own cancel was lost.
        const aborted = sessionChannels.abortSession(sessionId, reason || "closed by the server");
        if (aborted > 0) logger.info({ sessionId, operations: aborted }, "ended the tunnel's operations");
        const ended = ctx.terminals.endSession(sessionId, `the tunnel closed: ${reason || "closed by the server"}`);
        if (ended > 0) logger.info({ sessionId, terminals: ended }, "terminals of the closed tunnel ended");
        current.sendControl({ case: "tunnelClosed", value: create(TunnelClosedSchema, { sessionId }) });
        return;
      }
      default:
        logger.debug({ kind: frame.kind.case }, "ignored control frame");
    }
  }

  function onChannelOpen(channel: Channel, open: ChannelOpen): void {
    const sessionId = sessionOf(open);
    // Terminals end through their own registry (ctx.terminals), which answers
    // with the terminal's result (exit code, bytes) rather than an error.
    if (sessionId !== undefined && open.request.case !== "pty") sessionChannels.add(sessionId, channel);
    dispatchChannel(channel, open, ctx)
      .catch((err: unknown) => {
        const error = toGuruError(err);
        if (error.kind === "internal") logger.error({ err, channel: channel.id }, "operation failed");
        channel.sendError(error);
      })
      .catch((err: unknown) => logger.error({ err, channel: channel.id }, "could not report an operation's failure"));
  }

  /** Runs one link; resolves with its close code (rejects when the dial fails). */
  async function connectOnce(): Promise<number> {
    const socket = await dialServer({
      serverUrl: options.serverUrl,
      key: options.key,
      maxPayloadBytes: wsMaxPayloadBytes(limits),
      pooledMessageBytes: limits.maxFrameBytes,
      timeoutMs: options.dialTimeoutMs ?? 10_000,
    });
    const current: Link = createLink({
      socket,
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
        consentMode: options.consent ? consentModeOnWire[options.consent.policy.mode] : ConsentMode.UNSPECIFIED,
        requiresConsent: options.consent?.policy.requiredForEverySession ?? false,
        features: [...agentWireFeatures],
        serviceManager: ctx.system.support.serviceManager,
        systemSupport: {
          services: ctx.system.support.services,
          registry: ctx.system.support.registry,
          servicesMissing: ctx.system.support.servicesMissing,
          registryMissing: ctx.system.support.registryMissing,
        },
      }),
    });
    const { code, reason } = await current.closed;
    if (connected) backoff.linkLost();
    else backoff.failed();
    connected = false;
    link = undefined;
    options.consent?.handler.clear();
    if (tunnel.close()) logger.info("left tunnel mode: the link closed");
    ctx.terminals.endAll("the link to the server closed");
    if (!stopped) logger.warn({ code, reason }, "link to the server closed");
    return code;
  }

  async function run(): Promise<void> {
    while (!stopped) {
      let closeCode: number | undefined;
      try {
        closeCode = await connectOnce();
      } catch (err) {
        logger.warn({ reason: (err as Error).message }, "could not connect to the server");
        backoff.failed(retryAfterMsOf(err));
      }
      if (stopped) break;
      const { delayMs, replaced } = backoff.next(closeCode);
      if (replaced) logger.warn({ delayMs }, "another process connected with this agent's key and replaced this link; waiting before trying again");
      else logger.info({ delayMs }, "reconnecting after a pause");
      await new Promise<void>((resolve) => {
        wakeSleep = resolve;
        sleepTimer = setTimeout(resolve, delayMs);
      });
    }
  }

  // run() catches each attempt's failure itself; this only keeps a bug from going unhandled.
  const running = run().catch((err: unknown) => logger.error({ err }, "the agent's connection loop failed"));

  return {
    get connected() {
      return connected;
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
