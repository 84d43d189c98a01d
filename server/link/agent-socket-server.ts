// The agent WebSocket endpoint. Authentication happens before the upgrade
// completes (an unknown, missing or revoked key gets a 401 and never a
// socket); then the agent has handshakeTimeoutMs to send its Hello.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "../../lib/logging.ts";
import { wsMaxPayloadBytes, type WireLimits } from "../../lib/wire/limits.ts";
import { agentKeyFromHeader, hashAgentKey } from "../auth/agent-keys.ts";
import { clientAddress, type AuthFailureLimit } from "../auth/auth-failures.ts";
import { isGuruError } from "../../lib/errors.ts";
import type { Store } from "../store/index.ts";
import type { AgentRecord } from "../store/agents.ts";
import type { AgentRegistry } from "./agent-router.ts";
import { startAgentConnection, type AgentConnectionOptions } from "./agent-connection.ts";
import { createAgentKeyLookup } from "./agent-key-lookup.ts";
import { createAgentStatusWriter } from "./agent-status-writer.ts";
import { createHandshakePacer } from "./handshake-pacer.ts";

export const wireProtocol = "guru.wire.v1";

export interface AgentSocketServerOptions extends Omit<AgentConnectionOptions, "agent" | "keyHash" | "keyLookup" | "logger" | "statusWriter"> {
  store: Store;
  registry: AgentRegistry;
  limits: WireLimits;
  logger: Logger;
  maxConcurrentHandshakes: number;
  /** Failed key checks per client address, shared with the RPC routes. */
  authFailures?: AuthFailureLimit;
  trustedProxies?: readonly string[];
}

export function createAgentSocketServer(options: AgentSocketServerOptions) {
  const { store, logger } = options;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: wsMaxPayloadBytes(options.limits),
    handleProtocols: (protocols) => (protocols.has(wireProtocol) ? wireProtocol : false),
  });
  const statusWriter = createAgentStatusWriter({ agents: store.agents, logger });
  const keyLookup = createAgentKeyLookup({ agents: store.agents });
  let handshakes = 0;
  const pacer = createHandshakePacer(options.maxConcurrentHandshakes);
  let accepting = true;
  // Links whose cleanup has not finished; close() waits for them so nothing writes to a closed database.
  const connections = new Set<Promise<void>>();

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (!accepting) return refuse(socket, 503, "the server is shutting down; reconnect shortly");
    if (handshakes >= options.maxConcurrentHandshakes) {
      const retryAfterS = pacer.retryAfterSeconds();
      return refuse(socket, 503, `too many agents are connecting at once; retry in ${retryAfterS} s`, { "Retry-After": String(retryAfterS) });
    }
    const address = clientAddress(req, options.trustedProxies ?? []);
    try {
      options.authFailures?.check(address);
    } catch (err) {
      if (!isGuruError(err)) throw err;
      const retryAfterS = Math.ceil(Number(err.details.retryAfterMs ?? 1000) / 1000);
      return refuse(socket, 429, err.message, { "Retry-After": String(retryAfterS) });
    }
    const badKey = (message: string) => {
      options.authFailures?.fail(address);
      refuse(socket, 401, message);
    };
    handshakes++;
    const startedMs = performance.now();
    try {
      const offered = String(req.headers["sec-websocket-protocol"] ?? "")
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean);
      if (!offered.includes(wireProtocol)) {
        return refuse(socket, 400, `unsupported WebSocket subprotocol ${offered.length ? offered.join(", ") : "(none)"}; this server speaks ${wireProtocol}`);
      }
      const key = agentKeyFromHeader(req.headers.authorization);
      if (key === undefined) return badKey("missing agent key: send it as 'Authorization: Bearer <agent key>'");
      const keyHash = hashAgentKey(key);
      const agent = await keyLookup.find(keyHash);
      if (agent === undefined) return badKey("unknown agent key: enrol the agent and use the key shown then");
      // Not counted as a failure: a revoked agent redials by itself and is no guess, and
      // counting it would lock out good agents sharing its address.
      if (agent.revokedAt !== null) return refuse(socket, 401, `the key of agent ${agent.name} has been revoked; enrol it again`);
      if (socket.destroyed) return;
      await new Promise<void>((resolve) => {
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          resolve();
          accept(ws, agent, keyHash);
        });
      });
    } catch (err) {
      logger.error({ err }, "agent upgrade failed");
      refuse(socket, 500, "the server could not check the agent key");
    } finally {
      handshakes--;
      pacer.handshakeDone(performance.now() - startedMs);
    }
  }

  function accept(ws: WebSocket, agent: AgentRecord, keyHash: string): void {
    const connection = startAgentConnection(ws, {
      ...options,
      statusWriter,
      agent: { id: agent.id, name: agent.name },
      keyHash,
      keyLookup,
      logger: logger.child({ agentId: agent.id, agent: agent.name }),
    })
      // The connection logs its own failures; this only keeps a bug from becoming an unhandled rejection.
      .catch((err: unknown) => logger.error({ err, agentId: agent.id }, "agent connection cleanup failed"))
      .finally(() => connections.delete(connection));
    connections.add(connection);
  }

  return {
    handleUpgrade,
    /** Stops new agents; existing links are closed by the caller through the registry. */
    stopAccepting() {
      accepting = false;
    },
    async close(): Promise<void> {
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await Promise.allSettled([...connections]);
      await statusWriter.idle();
    },
  };
}

function refuse(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const reason =
    { 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" }[status] ?? "Error";
  const body = `${message}\n`;
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
