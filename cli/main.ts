// `guru <command>`: one binary for the server, the agent, the quick start, the
// MCP server and the technician commands.
import { longRunningCommands } from "../bin/long-running-commands.js";
import { describeFailure } from "./error-hints.ts";
import { useLightHeaders } from "./light-headers.ts";

type Command = { describe: string; run: (argv: string[]) => Promise<number | undefined> };

const commands: Record<string, Command> = {
  server: { describe: "run the server", run: async (argv) => (await import("./server-command.ts")).serverCommand(argv) },
  agent: { describe: "run an agent on this endpoint", run: async (argv) => (await import("./agent-command.ts")).agentCommand(argv) },
  start: {
    describe: "quick start: server on the embedded database plus a local agent",
    run: async (argv) => (await import("./start-command.ts")).startCommand(argv),
  },
  agents: { describe: "list agents", run: async (argv) => (await import("./technician-commands.ts")).agentsCommand(argv) },
  tunnel: { describe: "open, close or list tunnel sessions", run: async (argv) => (await import("./technician-commands.ts")).tunnelCommand(argv) },
  admin: {
    describe: "create technicians, issue tokens, enrol and revoke agents",
    run: async (argv) => (await import("./admin-commands.ts")).adminCommand(argv),
  },
  run: { describe: "run a command on an agent: guru run AGENT -- COMMAND…", run: async (argv) => (await import("./run-command.ts")).runCommand(argv) },
  cp: { describe: "copy files to or from an agent: guru cp SRC AGENT:PATH", run: async (argv) => (await import("./file-commands.ts")).cpCommand(argv) },
  ls: { describe: "list a directory on an agent: guru ls AGENT:PATH", run: async (argv) => (await import("./file-commands.ts")).lsCommand(argv) },
  shell: {
    describe: "an interactive terminal on an agent: guru shell AGENT [-- COMMAND…]",
    run: async (argv) => (await import("./shell-command.ts")).shellCommand(argv),
  },
  recording: {
    describe: "terminal recordings: guru recording list|play|export",
    run: async (argv) => (await import("./recording-commands.ts")).recordingCommand(argv),
  },
  services: {
    describe: "list services on an agent: guru services AGENT [FILTER]",
    run: async (argv) => (await import("./system-commands.ts")).servicesCommand(argv),
  },
  service: {
    describe: "start, stop, restart, enable or disable a service: guru service AGENT NAME ACTION [--dry-run]",
    run: async (argv) => (await import("./system-commands.ts")).serviceCommand(argv),
  },
  reg: {
    describe: "the Windows registry on an agent: guru reg AGENT list|get|set|delete KEY …",
    run: async (argv) => (await import("./system-commands.ts")).regCommand(argv),
  },
  mcp: { describe: "MCP server on stdio for Claude Code", run: async (argv) => (await import("../mcp/main.ts")).mcpCommand(argv) },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.describe}`);
  return `usage: guru <command> [options]\n\ncommands:\n${lines.join("\n")}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    process.stdout.write(`${(await import("../lib/version.ts")).version}\n`);
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`guru: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (!Object.hasOwn(longRunningCommands, name)) useLightHeaders();
  try {
    return (await command.run(rest)) ?? 0;
  } catch (err) {
    const failure = describeFailure(err);
    if (failure === undefined) throw err;
    process.stderr.write(`guru ${name}: ${failure}\n`);
    return 1;
  }
}
