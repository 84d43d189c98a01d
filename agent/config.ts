// The agent's options: flags, GURU_* variables, defaults.
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { parseConfig, stringList, wholeNumber, type ConfigSources } from "../lib/config.ts";

const agentOptions = {
  serverUrl: {
    env: "GURU_SERVER",
    flag: "server",
    schema: z.url(),
    default: undefined as string | undefined,
    describe: "the server's URL, e.g. https://guru.example.com",
  },
  keyFile: {
    env: "GURU_AGENT_KEY_FILE",
    flag: "key-file",
    schema: z.string().min(1),
    default: undefined as string | undefined,
    describe: "a file (mode 0600) holding the agent key shown at enrolment; the preferred way to give the key",
  },
  key: {
    env: "GURU_AGENT_KEY",
    flag: "key",
    schema: z.string().min(16),
    default: undefined as string | undefined,
    describe: "the agent key itself (the agent removes the variable from its environment once read; a flag shows in ps)",
  },
  name: {
    env: "GURU_AGENT_NAME",
    flag: "name",
    schema: z.string().min(1),
    default: undefined as string | undefined,
    describe: "a name for this agent in its logs",
  },
  allow: {
    env: "GURU_ALLOW",
    flag: "allow",
    schema: stringList,
    default: undefined as string[] | undefined,
    describe: "allowed paths (comma-separated or repeated); default the current directory",
  },
  policyFile: {
    env: "GURU_POLICY",
    flag: "policy",
    schema: z.string().min(1),
    default: undefined as string | undefined,
    describe: "the local policy file (JSON) the endpoint's owner controls",
  },
  stateDir: {
    env: "GURU_AGENT_STATE_DIR",
    flag: "state-dir",
    schema: z.string().min(1),
    default: join(homedir(), ".guru-agent"),
    describe: "where the agent keeps partial uploads' state and its operation log",
  },
  backoffMaxMs: {
    env: "GURU_BACKOFF_MAX_MS",
    schema: wholeNumber(100),
    default: 60_000,
    describe:
      "the longest pause between reconnects (full jitter: the first after a lost link within 5 s, then up to half the time offline, or the server's Retry-After)",
  },
  replacedBackoffMs: {
    env: "GURU_REPLACED_BACKOFF_MS",
    schema: wholeNumber(100),
    default: 60_000,
    describe:
      "the shortest pause after another process with this agent's key replaced its link (jittered up to twice that; doubles while it repeats, up to 15 min)",
  },
  logLevel: { env: "GURU_LOG_LEVEL", flag: "log-level", schema: z.string(), default: "info", describe: "log level" },
  keepBackups: {
    env: "GURU_KEEP_BACKUPS",
    schema: z.stringbool(),
    default: true,
    describe: "keep the file an upload replaces as a backup beside it, unless the upload says otherwise",
  },
  uploadAbandonedMs: {
    env: "GURU_UPLOAD_ABANDONED_MS",
    schema: wholeNumber(1),
    default: 24 * 3600_000,
    describe: "partial uploads untouched this long are deleted",
  },
  enable: {
    env: "GURU_ENABLE",
    flag: "enable",
    schema: stringList.pipe(z.array(z.enum(["exec", "files", "services", "registry", "terminal"]))),
    default: [] as string[],
    describe: "capabilities to switch on where the policy file does not say (services, registry, terminal; comma-separated or repeated)",
  },
  serviceManager: {
    env: "GURU_SERVICE_MANAGER",
    schema: z.enum(["auto", "systemd", "sysv", "none"]),
    default: "auto" as "auto" | "systemd" | "sysv" | "none",
    describe: "the Linux service manager: auto (systemd when it runs, else SysV init scripts), systemd, sysv or none",
  },
  sysvInitDir: {
    env: "GURU_SYSV_INIT_DIR",
    flag: "init-dir",
    schema: z.string().min(1),
    default: "/etc/init.d",
    describe: "where SysV init scripts are (their rcN.d link directories beside it)",
  },
  processLauncher: {
    env: "GURU_PROCESS_LAUNCHER",
    schema: z.enum(["auto", "launcher", "direct"]),
    default: "auto" as "auto" | "launcher" | "direct",
    describe:
      "how commands are started: from a small launcher process (POSIX; forking from the agent costs more as it grows), directly, or auto (launcher on POSIX)",
  },
  // The agent itself runs with umask 077 (its state is private); what commands
  // create and the files uploads place are the technician's, with the usual mask.
  commandUmask: {
    env: "GURU_COMMAND_UMASK",
    schema: z.string().regex(/^0?[0-7]{3}$/, "an octal umask such as 022"),
    default: "022",
    describe: "the umask commands run with (through the launcher) and that new uploaded files get (0644 less it)",
  },
};

export type AgentConfig = {
  serverUrl?: string;
  keyFile?: string;
  key?: string;
  name?: string;
  allow?: string[];
  policyFile?: string;
  stateDir: string;
  backoffMaxMs: number;
  replacedBackoffMs: number;
  logLevel: string;
  keepBackups: boolean;
  uploadAbandonedMs: number;
  processLauncher: "auto" | "launcher" | "direct";
  commandUmask: string;
  enable: string[];
  serviceManager: "auto" | "systemd" | "sysv" | "none";
  sysvInitDir: string;
};

export function loadAgentConfig(sources?: ConfigSources): AgentConfig {
  return parseConfig(agentOptions, sources) as AgentConfig;
}
