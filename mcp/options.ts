// The options of `guru mcp`: flags, GURU_MCP_* variables, defaults. Where the
// server is and which token to use come from cli/connection.ts (--url,
// --token-file, GURU_URL, GURU_TOKEN), shared with the technician commands.
import { z } from "zod";
import { describeOptions, parseConfig, wholeNumber, type ConfigOf } from "../lib/config.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

const mcpOptionSpecs = {
  // 50 s: under the 60 s after which MCP clients commonly give up on a call.
  waitMs: {
    env: "GURU_MCP_WAIT_MS",
    flag: "wait-ms",
    schema: wholeNumber(0, 10 * 60_000),
    default: 50_000,
    describe: "how long run_command and get_command_output wait before answering with a job that is still running (ms)",
  },
  maxOutputBytes: {
    env: "GURU_MCP_MAX_OUTPUT_BYTES",
    flag: "max-output-bytes",
    schema: wholeNumber(1 * KiB, 16 * MiB),
    default: 64 * KiB,
    describe: "the most text (bytes) one tool result carries; the rest is paged by offset",
  },
  idleMs: {
    env: "GURU_MCP_IDLE_MS",
    flag: "idle-ms",
    schema: wholeNumber(0),
    default: 5 * 60_000,
    describe: "how long a tunnel stays open without a tool call on its agent (ms)",
  },
  jobBufferBytes: {
    env: "GURU_MCP_JOB_BUFFER_BYTES",
    schema: wholeNumber(64 * KiB, 256 * MiB),
    default: 8 * MiB,
    describe: "the output kept per stream of a command job (bytes); older output is dropped first",
  },
  jobKeepMs: { env: "GURU_MCP_JOB_KEEP_MS", schema: wholeNumber(0), default: 30 * 60_000, describe: "how long a finished job's output stays readable (ms)" },
  maxJobs: { env: "GURU_MCP_MAX_JOBS", schema: wholeNumber(1, 10_000), default: 100, describe: "jobs kept at once; the oldest finished ones go first" },
  maxWriteBytes: {
    env: "GURU_MCP_MAX_WRITE_BYTES",
    schema: wholeNumber(1, 256 * MiB),
    default: 16 * MiB,
    describe: "the largest content write_file accepts (bytes)",
  },
  logLevel: {
    env: "GURU_LOG_LEVEL",
    flag: "log-level",
    schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    default: "info",
    describe: "log level (logs go to stderr; stdout carries only the protocol)",
  },
};

export type McpOptions = ConfigOf<typeof mcpOptionSpecs>;

export function loadMcpOptions(flags: Record<string, string | string[] | boolean>, env: NodeJS.ProcessEnv = process.env): McpOptions {
  return parseConfig(mcpOptionSpecs, { flags, env });
}

/** For `guru mcp --help` and the README. */
export function describeMcpOptions(): string[] {
  return describeOptions(mcpOptionSpecs);
}
