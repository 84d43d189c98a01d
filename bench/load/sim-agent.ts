// One simulated agent for the load generator: the real wire code (dial with
// the key in a header, createLink, Hello, heartbeats at the interval the
// server's HelloAck names, tunnel open/close answers) and the real reconnect
// policy of `guru agent`; an exec is answered at once with exit code 0 from
// memory, so the figures are the server's and the link's, not fork()'s.
import { create } from "@bufbuild/protobuf";
import { ExecResultSchema, ExitReason } from "../../gen/guru/wire/v1/exec_pb.js";
import { HelloSchema, TunnelClosedSchema, TunnelReadySchema, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { FrameSocket } from "../../lib/wire/frame-socket.ts";
import { defaultWireLimits, wsMaxPayloadBytes } from "../../lib/wire/limits.ts";
import { createLink, type Link } from "../../lib/wire/link.ts";
import { createReconnectBackoff, type ReconnectBackoff } from "../../agent/link/backoff.ts";
import { dialServer, retryAfterMsOf } from "../../agent/link/dial.ts";

export interface SwarmCounters {
  online: number;
  connects: number;
  /** Dials refused or failed (503 busy, connection refused, timeouts). */
  dialFailures: number;
  busyRefusals: number;
  linkCloses: number;
  heartbeatAcks: number;
  execs: number;
}

export interface SimAgentOptions {
  serverUrl: string;
  key: string;
  localAddress: string;
  logger: Logger;
  counters: SwarmCounters;
  backoffMaxMs: number;
}

const limits = { ...defaultWireLimits, initialWindowBytes: 64 * 1024 };

export class SimAgent {
  link: Link | undefined;
  online = false;
  private stopped = false;
  private heartbeat = { intervalMs: 30_000, deadlineMs: 90_000 };
  private readonly backoff: ReconnectBackoff;
  private sleep: NodeJS.Timeout | undefined;

  private readonly options: SimAgentOptions;

  constructor(options: SimAgentOptions) {
    this.options = options;
    this.backoff = createReconnectBackoff({ maxMs: options.backoffMaxMs });
  }

  /** Dials once: "connected" once the HelloAck came, "failed" if the dial failed, "closed" if the link ended first. */
  async connectOnce(): Promise<"connected" | "failed" | "closed"> {
    const { counters } = this.options;
    let ws: Awaited<ReturnType<typeof dialServer>>;
    try {
      ws = await dialServer({
        serverUrl: this.options.serverUrl,
        key: this.options.key,
        maxPayloadBytes: wsMaxPayloadBytes(limits),
        pooledMessageBytes: limits.maxFrameBytes,
        timeoutMs: 30_000,
        localAddress: this.options.localAddress,
      });
    } catch (err) {
      counters.dialFailures++;
      if (err instanceof GuruError && err.details.status === 503) counters.busyRefusals++;
      this.backoff.failed(retryAfterMsOf(err));
      return "failed";
    }
    return new Promise((resolve) => {
      const link: Link = createLink({
        socket: ws,
        role: "agent",
        limits,
        logger: this.options.logger,
        onControl: (frame) => {
          if (frame.kind.case === "helloAck") {
            this.heartbeat = { intervalMs: frame.kind.value.heartbeatIntervalMs, deadlineMs: frame.kind.value.heartbeatDeadlineMs };
            link.setHeartbeat(this.heartbeatOptions(true));
            this.online = true;
            counters.online++;
            counters.connects++;
            this.backoff.connected();
            resolve("connected");
          } else this.onControl(link, frame);
        },
        onChannelOpen: (channel, open) => {
          counters.execs++;
          if (open.request.case !== "exec") {
            channel.sendError(new GuruError("invalid", `the load generator answers exec only, not ${String(open.request.case)}`));
            return;
          }
          channel.sendResult({ case: "exec", value: create(ExecResultSchema, { exitCode: 0, reason: ExitReason.EXITED }) });
        },
      });
      this.link = link;
      this.countHeartbeats(ws);
      link.sendControl({
        case: "hello",
        value: create(HelloSchema, {
          agentVersion: "load-generator",
          inventory: { hostname: `sim-${this.options.key.slice(-6)}`, os: "linux", osRelease: "bench", arch: "x64" },
          capabilities: ["exec"],
          initialWindowBytes: limits.initialWindowBytes,
          maxFrameBytes: limits.maxFrameBytes,
        }),
      });
      void link.closed.then(() => {
        counters.linkCloses++;
        if (this.online) {
          counters.online--;
          this.backoff.linkLost();
        } else this.backoff.failed();
        this.online = false;
        this.link = undefined;
        resolve("closed");
        if (this.keepRunning) this.scheduleReconnect();
      });
    });
  }

  private keepRunning = false;

  /** From now on, a lost link or a failed dial is retried with the agent's backoff, forever. */
  runForever(): void {
    this.keepRunning = true;
    if (!this.link) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.sleep = setTimeout(async () => {
      if (this.stopped) return;
      // A link that closes schedules its own redial (see connectOnce).
      if ((await this.connectOnce()) === "failed") this.scheduleReconnect();
    }, this.backoff.nextDelayMs());
  }

  /** Stops or restarts sending heartbeats (to measure the server without them); the deadline keeps running. */
  setHeartbeatSending(send: boolean): void {
    this.link?.setHeartbeat(this.heartbeatOptions(send));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.sleep);
    this.link?.close(1000, "load generator stopping");
  }

  private heartbeatOptions(send: boolean) {
    return { ...this.heartbeat, send };
  }

  private onControl(link: Link, frame: Frame): void {
    switch (frame.kind.case) {
      case "tunnelOpen":
        link.sendControl({ case: "tunnelReady", value: create(TunnelReadySchema, { sessionId: frame.kind.value.sessionId }) });
        return;
      case "tunnelClose":
        link.sendControl({ case: "tunnelClosed", value: create(TunnelClosedSchema, { sessionId: frame.kind.value.sessionId }) });
        return;
      default:
        return;
    }
  }

  /** Heartbeat acks, counted at the socket (the link consumes them itself). */
  private countHeartbeats(ws: FrameSocket): void {
    const { counters } = this.options;
    ws.onMessage((data) => {
      if (data[0] === heartbeatAckTag) counters.heartbeatAcks++;
    });
  }
}

/** Frame.heartbeat_ack is field 13, length-delimited, on channel 0 (no channel_id byte): tag (13 << 3) | 2. */
const heartbeatAckTag = (13 << 3) | 2;
