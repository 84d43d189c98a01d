// The cluster's one NATS connection: subjects under the configured prefix,
// whether NATS is reachable right now (calls to other nodes fail at once
// while it is not), and JSON request/reply with GuruErrors for failures.
import { connect, errors as natsErrors, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { GuruError, toGuruError, type ErrorKind } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";

export interface NatsBusOptions {
  servers: string;
  prefix: string;
  nodeId: string;
  logger: Logger;
  requestTimeoutMs: number;
}

/** A failure in a reply: the kind and message of the GuruError on the other node. */
export interface WireFailure {
  error?: { kind: ErrorKind; message: string };
}

export async function connectNatsBus(options: NatsBusOptions) {
  const { logger, prefix } = options;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.servers
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      name: `guru-server ${options.nodeId}`,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // A dead NATS server is noticed within a few seconds, not minutes.
      pingInterval: 2_000,
      maxPingOut: 2,
      timeout: 5_000,
    });
  } catch (err) {
    throw new GuruError("unavailable", `could not connect to NATS at ${options.servers}: ${(err as Error).message}`, { cause: err });
  }
  let connected = true;
  const downListeners = new Set<() => void>();
  const upListeners = new Set<() => void>();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") {
        if (connected) logger.warn({ status: s.type }, "lost the NATS connection; calls to agents on other nodes fail until it is back");
        const was = connected;
        connected = false;
        if (was) for (const l of [...downListeners]) l();
      } else if (s.type === "reconnect") {
        logger.info("NATS connection back");
        connected = true;
        for (const l of [...upListeners]) l();
      }
    }
  })();

  const subject = (...tokens: string[]) => [prefix, ...tokens].join(".");
  const encoder = new TextEncoder();

  function requireConnected(what: string): void {
    if (!connected || nc.isClosed()) throw new GuruError("unavailable", `${what}: the cluster's message bus (NATS) is unreachable`);
  }

  /** A JSON request; the answer's `error`, a timeout or no responder become GuruErrors. */
  async function request<T extends object>(to: string, body: object, what: string, timeoutMs = options.requestTimeoutMs): Promise<T> {
    requireConnected(what);
    let reply: Msg;
    try {
      reply = await nc.request(to, encoder.encode(JSON.stringify(body)), { timeout: timeoutMs });
    } catch (err) {
      if (err instanceof natsErrors.RequestError && err.isNoResponders()) throw new GuruError("unavailable", `${what}: no server node answers on ${to}`);
      if (err instanceof natsErrors.TimeoutError || (err as Error).name === "TimeoutError")
        throw new GuruError("unavailable", `${what}: no answer within ${timeoutMs} ms`);
      throw new GuruError("unavailable", `${what}: ${(err as Error).message}`, { cause: err });
    }
    const answer = reply.json<T & WireFailure>();
    if (answer.error) throw new GuruError(answer.error.kind, answer.error.message);
    return answer;
  }

  /** Serves JSON requests on a subject; a thrown error goes back as `error`. */
  function serve<T>(on: string, handler: (body: T, msg: Msg) => Promise<object> | object): Subscription {
    return nc.subscribe(on, {
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          let answer: object;
          try {
            answer = await handler(msg.json<T>(), msg);
          } catch (e) {
            const g = toGuruError(e);
            answer = { error: { kind: g.kind, message: g.message } };
          }
          if (msg.reply) msg.respond(encoder.encode(JSON.stringify(answer)));
        })();
      },
    });
  }

  function publishJson(to: string, body: object): void {
    if (nc.isClosed()) return;
    nc.publish(to, encoder.encode(JSON.stringify(body)));
  }

  return {
    nc,
    nodeId: options.nodeId,
    subject,
    get connected() {
      return connected && !nc.isClosed();
    },
    /** Largest message the NATS server takes. */
    get maxPayloadBytes() {
      return nc.info?.max_payload ?? 1024 * 1024;
    },
    requireConnected,
    request,
    serve,
    publishJson,
    onDown(listener: () => void) {
      downListeners.add(listener);
      return () => downListeners.delete(listener);
    },
    onUp(listener: () => void) {
      upListeners.add(listener);
      return () => upListeners.delete(listener);
    },
    async close(): Promise<void> {
      if (nc.isClosed()) return;
      await nc.drain().catch(() => nc.close());
    },
  };
}

export type NatsBus = Awaited<ReturnType<typeof connectNatsBus>>;
