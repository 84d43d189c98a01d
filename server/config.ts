// The server's options: flags, GURU_* variables and DATABASE_URL.
import { z } from "zod";
import { maxTokenTtlSeconds } from "./auth/tokens.ts";
import { parseConfig, stringList, wholeNumber, type ConfigSources } from "../lib/config.ts";

const ms = (describe: string, dflt: number, min = 1, max?: number) => ({ schema: wholeNumber(min, max), default: dflt, describe });

/** Upper bound: a revocation made through another server process reaches this one within 10 s. */
const maxTokenCheckCacheMs = 10_000;

const serverOptions = {
  host: { env: "GURU_HOST", flag: "host", schema: z.string().min(1), default: "127.0.0.1", describe: "address to listen on" },
  port: { env: "GURU_PORT", flag: "port", schema: wholeNumber(0, 65535), default: 8080, describe: "TCP port (0 picks a free one)" },
  dataDir: {
    env: "GURU_DATA_DIR",
    flag: "data-dir",
    schema: z.string().min(1),
    default: ".guru",
    describe: "directory for the embedded database and server state",
  },
  databaseUrl: {
    env: "DATABASE_URL",
    flag: "database-url",
    schema: z.string().startsWith("postgres"),
    default: undefined as string | undefined,
    describe: "a postgres:// URL; without it the embedded database in the data dir is used",
  },
  tlsCertFile: {
    env: "GURU_TLS_CERT",
    flag: "tls-cert",
    schema: z.string().min(1),
    default: undefined as string | undefined,
    describe: "PEM certificate; with a key, serves HTTPS and HTTP/2 (gRPC)",
  },
  tlsKeyFile: {
    env: "GURU_TLS_KEY",
    flag: "tls-key",
    schema: z.string().min(1),
    default: undefined as string | undefined,
    describe: "PEM private key for --tls-cert",
  },
  heartbeatIntervalMs: { env: "GURU_HEARTBEAT_INTERVAL_MS", flag: "heartbeat-interval-ms", ...ms("how often agents send a heartbeat", 30_000, 50) },
  heartbeatDeadlineMs: { env: "GURU_HEARTBEAT_DEADLINE_MS", flag: "heartbeat-deadline-ms", ...ms("silence after which an agent link is dead", 90_000, 100) },
  handshakeTimeoutMs: { env: "GURU_HANDSHAKE_TIMEOUT_MS", ...ms("time an agent has to send its Hello after the upgrade", 10_000) },
  maxConcurrentHandshakes: {
    env: "GURU_MAX_CONCURRENT_HANDSHAKES",
    schema: wholeNumber(1),
    default: 128,
    describe: "agent upgrades being authenticated at once; more get 503 with a staggered Retry-After",
  },
  tunnelOpenTimeoutMs: { env: "GURU_TUNNEL_OPEN_TIMEOUT_MS", ...ms("time an agent has to answer TunnelOpen", 10_000) },
  sessionIdleMs: { env: "GURU_SESSION_IDLE_MS", ...ms("a tunnel without activity for this long expires", 4 * 3600_000) },
  sessionSweepIntervalMs: { env: "GURU_SESSION_SWEEP_INTERVAL_MS", ...ms("how often idle tunnels are looked for", 60_000, 10) },
  tokenCheckCacheMs: {
    env: "GURU_TOKEN_CHECK_CACHE_MS",
    ...ms(
      `how long a token the database confirmed is trusted before asking again; a revocation here applies at once, one made by another server process within this time (0: ask every time; at most ${maxTokenCheckCacheMs})`,
      2_000,
      0,
      maxTokenCheckCacheMs,
    ),
  },
  tokenTtlSeconds: {
    env: "GURU_TOKEN_TTL_SECONDS",
    schema: wholeNumber(60, maxTokenTtlSeconds),
    default: 86_400,
    describe: `lifetime of technician tokens in seconds (60 to ${maxTokenTtlSeconds}, 30 days)`,
  },
  authFailureLimit: {
    env: "GURU_AUTH_FAILURE_LIMIT",
    schema: wholeNumber(1),
    default: 20,
    describe: "failed authentications (RPC tokens, agent keys) per client address in the window before the address is refused for GURU_AUTH_BLOCK_MS",
  },
  authFailureWindowMs: { env: "GURU_AUTH_FAILURE_WINDOW_MS", ...ms("the window of the failed-authentication limit", 60_000) },
  authBlockMs: { env: "GURU_AUTH_BLOCK_MS", ...ms("how long an address over the failed-authentication limit is refused (429), whatever it sends", 5 * 60_000) },
  trustedProxies: {
    env: "GURU_TRUSTED_PROXIES",
    schema: stringList,
    default: [] as string[],
    describe: "addresses of reverse proxies whose X-Forwarded-For names the client (comma-separated); by default the socket's address is the client",
  },
  tunnelOpenRateLimit: { env: "GURU_TUNNEL_OPEN_RATE_LIMIT", schema: wholeNumber(1), default: 30, describe: "tunnel opens per technician in the rate window" },
  tunnelOpenRateWindowMs: { env: "GURU_TUNNEL_OPEN_RATE_WINDOW_MS", ...ms("the sliding window of the tunnel-open rate limit", 60_000) },
  fileOpRateLimit: {
    env: "GURU_FILE_OP_RATE_LIMIT",
    schema: wholeNumber(1),
    default: 600,
    describe: "file operations (stat, list, download, upload start) per technician in the rate window",
  },
  fileOpRateWindowMs: { env: "GURU_FILE_OP_RATE_WINDOW_MS", ...ms("the sliding window of the file-operation rate limit", 60_000) },
  maxUploadsPerTechnicianAgent: {
    env: "GURU_MAX_UPLOADS_PER_TECHNICIAN_AGENT",
    schema: wholeNumber(1),
    default: 4,
    describe: "active (unfinished) uploads one technician may have to one agent",
  },
  metricsToken: {
    env: "GURU_METRICS_TOKEN",
    schema: z.string().min(16),
    default: undefined as string | undefined,
    describe: "when set, /metrics needs 'Authorization: Bearer <this>' (at least 16 characters)",
  },
  httpHeadersTimeoutMs: { env: "GURU_HTTP_HEADERS_TIMEOUT_MS", ...ms("time a client has to send a request's headers (HTTP/1.1)", 30_000) },
  httpRequestTimeoutMs: {
    env: "GURU_HTTP_REQUEST_TIMEOUT_MS",
    ...ms("time a client has to send a whole request, body included (HTTP/1.1; answers may stream for longer; 0: no limit)", 300_000, 0),
  },
  httpKeepAliveTimeoutMs: { env: "GURU_HTTP_KEEP_ALIVE_TIMEOUT_MS", ...ms("an idle keep-alive connection is closed after this (HTTP/1.1)", 65_000) },
  http2IdleTimeoutMs: {
    env: "GURU_HTTP2_IDLE_TIMEOUT_MS",
    ...ms(
      "an HTTP/2 session with no frames for this long is closed (above the longest command timeout, so a quiet command's stream survives; 0: never)",
      2 * 3600_000,
      0,
    ),
  },
  execDefaultTimeoutMs: { env: "GURU_EXEC_DEFAULT_TIMEOUT_MS", ...ms("a command's timeout when the caller gives none", 30_000) },
  execMaxTimeoutMs: { env: "GURU_EXEC_MAX_TIMEOUT_MS", ...ms("the longest timeout a caller may ask for", 3600_000) },
  execMaxOutputBytes: { env: "GURU_EXEC_MAX_OUTPUT_BYTES", schema: wholeNumber(1), default: 1024 * 1024, describe: "output kept per stream per command" },
  commandRateLimit: { env: "GURU_COMMAND_RATE_LIMIT", schema: wholeNumber(1), default: 100, describe: "commands per technician per agent in the rate window" },
  commandRateWindowMs: { env: "GURU_COMMAND_RATE_WINDOW_MS", ...ms("the sliding window of the command rate limit", 60_000) },
  terminalRateLimit: {
    env: "GURU_TERMINAL_RATE_LIMIT",
    schema: wholeNumber(1),
    default: 30,
    describe: "terminals a technician may open per agent in the command rate window",
  },
  recordingMaxOutputBytes: {
    env: "GURU_RECORDING_MAX_OUTPUT_BYTES",
    schema: wholeNumber(0),
    default: 256 * 1024 * 1024,
    describe: "terminal output stored per recording; past it only input and resizes are (a marker says where)",
  },
  auditRetentionDays: { env: "GURU_AUDIT_RETENTION_DAYS", schema: wholeNumber(1), default: 90, describe: "audit rows older than this are removed" },
  failureAlertThreshold: {
    env: "GURU_FAILURE_ALERT_THRESHOLD",
    schema: wholeNumber(1),
    default: 50,
    describe: "failed or refused commands in the alert window that raise an alert",
  },
  failureAlertWindowMs: { env: "GURU_FAILURE_ALERT_WINDOW_MS", ...ms("the window of the failure alert", 5 * 60_000) },
  linkChurnThreshold: {
    env: "GURU_LINK_CHURN_THRESHOLD",
    schema: wholeNumber(2),
    default: 3,
    describe: "replacements of one agent's link within the churn window that raise an alert",
  },
  linkChurnWindowMs: { env: "GURU_LINK_CHURN_WINDOW_MS", ...ms("the window of the link churn alert", 60_000) },
  uploadAbandonedMs: { env: "GURU_UPLOAD_ABANDONED_MS", ...ms("partial uploads untouched this long are removed", 24 * 3600_000) },
  uploadSweepIntervalMs: { env: "GURU_UPLOAD_SWEEP_INTERVAL_MS", ...ms("how often abandoned partial uploads are looked for", 60_000, 10) },
  // Partner integration (guru.integration.v1).
  consentTimeoutMs: {
    env: "GURU_CONSENT_TIMEOUT_MS",
    ...ms("how long the person at an endpoint has to answer a consent request; no answer is a denial", 30_000, 100),
  },
  publicUrl: {
    env: "GURU_PUBLIC_URL",
    flag: "public-url",
    schema: z.url(),
    default: undefined as string | undefined,
    describe: "the server's URL as partners' browsers reach it, for viewer URLs; default the listener's own URL",
  },
  viewerFrameAncestors: {
    env: "GURU_VIEWER_FRAME_ANCESTORS",
    schema: stringList,
    default: [] as string[],
    describe:
      "origins that may frame the web viewer besides the integration keys' allowed origins, for technicians' own tools (comma-separated, e.g. https://tools.example.com)",
  },
  watchHeartbeatMs: { env: "GURU_WATCH_HEARTBEAT_MS", ...ms("how often a quiet WatchSessions stream gets a heartbeat message", 15_000, 100) },
  natsUrl: {
    env: "GURU_NATS_URL",
    flag: "nats-url",
    schema: z.string().regex(/^(nats|tls|wss?):\/\//, "must be a nats://, tls:// or ws(s):// URL"),
    default: undefined as string | undefined,
    describe: "NATS server(s) to join a cluster of server nodes on one database (comma-separated URLs); without it the server runs alone",
  },
  nodeId: {
    env: "GURU_NODE_ID",
    flag: "node-id",
    schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '-' and '_' only (1 to 64)"),
    default: undefined as string | undefined,
    describe: "this node's name in the cluster, unique among the nodes and kept across restarts (default: the host name)",
  },
  natsSubjectPrefix: {
    env: "GURU_NATS_SUBJECT_PREFIX",
    schema: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "NATS subject tokens separated by dots"),
    default: "guru",
    describe: "first tokens of every NATS subject the cluster uses (separate clusters sharing one NATS need different prefixes)",
  },
  nodeTtlMs: {
    env: "GURU_NODE_TTL_MS",
    ...ms("a cluster node silent this long is dead: the others take over its agents' state and close its tunnels", 15_000, 1000),
  },
  natsRequestTimeoutMs: {
    env: "GURU_NATS_REQUEST_TIMEOUT_MS",
    ...ms("how long a node waits for another node to answer a request (channel open, control frame, takeover)", 5_000, 100),
  },
  logLevel: {
    env: "GURU_LOG_LEVEL",
    flag: "log-level",
    schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    default: "info",
    describe: "log level",
  },
};

export type ServerConfig = {
  [K in keyof typeof serverOptions]: (typeof serverOptions)[K]["default"] extends infer D ? (D extends undefined ? string | undefined : D) : never;
};

export function loadServerConfig(sources?: ConfigSources, overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...(parseConfig(serverOptions, sources) as ServerConfig), ...overrides };
}
