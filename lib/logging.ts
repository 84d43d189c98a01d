// pino JSON logs. Child loggers carry the agent, session or RPC they speak of.
// Secrets never reach a log: the redact list covers every field that could
// hold one, whatever child logger writes it.
import { pino, type Logger } from "pino";

export type { Logger };

const redactPaths = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "token",
  "*.token",
  "agentKey",
  "*.agentKey",
  "key",
  "*.key",
  "privateJwk",
  "*.privateJwk",
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go: stdout by default; stderr for `guru mcp`, whose stdout is the protocol. */
  destination?: "stdout" | "stderr";
  name?: string;
  /** Append to this file instead (the quick start keeps its terminal for people). */
  file?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.destination === "stderr" ? 2 : 1;
  const destination = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination({ fd, sync: false });
  return pino(
    {
      name: options.name ?? "guru",
      level: options.level ?? process.env.GURU_LOG_LEVEL ?? "info",
      redact: { paths: redactPaths, censor: "[redacted]" },
      base: undefined,
    },
    destination,
  );
}

/** A logger that drops everything, for unit tests of one layer. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
