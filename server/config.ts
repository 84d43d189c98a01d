// The server's options: flags, GURU_* variables and DATABASE_URL.
import { z } from "zod";
import { parseConfig, wholeNumber, type ConfigSources } from "../lib/config.ts";

const ms = (describe: string, dflt: number, min = 1) => ({ schema: wholeNumber(min), default: dflt, describe });

export const serverOptions = {
  host: { env: "GURU_HOST", flag: "host", schema: z.string().min(1), default: "127.0.0.1", describe: "address to listen on" },
  port: { env: "GURU_PORT", flag: "port", schema: wholeNumber(0, 65535), default: 8080, describe: "TCP port (0 picks a free one)" },
  dataDir: { env: "GURU_DATA_DIR", flag: "data-dir", schema: z.string().min(1), default: ".guru", describe: "directory for the embedded database and server state" },
  databaseUrl: { env: "DATABASE_URL", flag: "database-url", schema: z.string().startsWith("postgres"), default: undefined as string | undefined, describe: "a postgres:// URL; without it the embedded database in the data dir is used" },
  tlsCertFile: { env: "GURU_TLS_CERT", flag: "tls-cert", schema: z.string().min(1), default: undefined as string | undefined, describe: "PEM certificate; with a key, serves HTTPS and HTTP/2 (gRPC)" },
  tlsKeyFile: { env: "GURU_TLS_KEY", flag: "tls-key", schema: z.string().min(1), default: undefined as string | undefined, describe: "PEM private key for --tls-cert" },
  heartbeatIntervalMs: { env: "GURU_HEARTBEAT_INTERVAL_MS", flag: "heartbeat-interval-ms", ...ms("how often agents send a heartbeat", 30_000, 50) },
  heartbeatDeadlineMs: { env: "GURU_HEARTBEAT_DEADLINE_MS", flag: "heartbeat-deadline-ms", ...ms("silence after which an agent link is dead", 90_000, 100) },
  handshakeTimeoutMs: { env: "GURU_HANDSHAKE_TIMEOUT_MS", ...ms("time an agent has to send its Hello after the upgrade", 10_000) },
  maxConcurrentHandshakes: { env: "GURU_MAX_CONCURRENT_HANDSHAKES", schema: wholeNumber(1), default: 128, describe: "agent upgrades being authenticated at once; more get 503" },
  tunnelOpenTimeoutMs: { env: "GURU_TUNNEL_OPEN_TIMEOUT_MS", ...ms("time an agent has to answer TunnelOpen", 10_000) },
  sessionIdleMs: { env: "GURU_SESSION_IDLE_MS", ...ms("a tunnel without activity for this long expires", 4 * 3600_000) },
  sessionSweepIntervalMs: { env: "GURU_SESSION_SWEEP_INTERVAL_MS", ...ms("how often idle tunnels are looked for", 60_000, 10) },
  tokenCheckCacheMs: { env: "GURU_TOKEN_CHECK_CACHE_MS", ...ms("how long a token the database confirmed is trusted before asking again; a revocation here applies at once, one made by another server process within this time (0: ask every time)", 2_000, 0) },
  tokenTtlSeconds: { env: "GURU_TOKEN_TTL_SECONDS", schema: wholeNumber(60), default: 86_400, describe: "lifetime of technician tokens" },
  execDefaultTimeoutMs: { env: "GURU_EXEC_DEFAULT_TIMEOUT_MS", ...ms("a command's timeout when the caller gives none", 30_000) },
  execMaxTimeoutMs: { env: "GURU_EXEC_MAX_TIMEOUT_MS", ...ms("the longest timeout a caller may ask for", 3600_000) },
  execMaxOutputBytes: { env: "GURU_EXEC_MAX_OUTPUT_BYTES", schema: wholeNumber(1), default: 1024 * 1024, describe: "output kept per stream per command" },
  commandRateLimit: { env: "GURU_COMMAND_RATE_LIMIT", schema: wholeNumber(1), default: 100, describe: "commands per technician per agent in the rate window" },
  commandRateWindowMs: { env: "GURU_COMMAND_RATE_WINDOW_MS", ...ms("the sliding window of the command rate limit", 60_000) },
  terminalRateLimit: { env: "GURU_TERMINAL_RATE_LIMIT", schema: wholeNumber(1), default: 30, describe: "terminals a technician may open per agent in the command rate window" },
  recordingMaxOutputBytes: { env: "GURU_RECORDING_MAX_OUTPUT_BYTES", schema: wholeNumber(0), default: 256 * 1024 * 1024, describe: "terminal output stored per recording; past it only input and resizes are (a marker says where)" },
  auditRetentionDays: { env: "GURU_AUDIT_RETENTION_DAYS", schema: wholeNumber(1), default: 90, describe: "audit rows older than this are removed" },
  failureAlertThreshold: { env: "GURU_FAILURE_ALERT_THRESHOLD", schema: wholeNumber(1), default: 50, describe: "failed or refused commands in the alert window that raise an alert" },
  failureAlertWindowMs: { env: "GURU_FAILURE_ALERT_WINDOW_MS", ...ms("the window of the failure alert", 5 * 60_000) },
  uploadAbandonedMs: { env: "GURU_UPLOAD_ABANDONED_MS", ...ms("partial uploads untouched this long are removed", 24 * 3600_000) },
  uploadSweepIntervalMs: { env: "GURU_UPLOAD_SWEEP_INTERVAL_MS", ...ms("how often abandoned partial uploads are looked for", 60_000, 10) },
  logLevel: { env: "GURU_LOG_LEVEL", flag: "log-level", schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]), default: "info", describe: "log level" },
};

export type ServerConfig = {
  [K in keyof typeof serverOptions]: (typeof serverOptions)[K]["default"] extends infer D ? (D extends undefined ? string | undefined : D) : never;
};

export function loadServerConfig(sources?: ConfigSources, overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...(parseConfig(serverOptions, sources) as ServerConfig), ...overrides };
}
