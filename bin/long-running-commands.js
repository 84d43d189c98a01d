// The commands that keep running: the server, the agent, the quick start and
// the MCP server, each with the module that implements it (from the project's
// root). They always run from the TypeScript sources, never from the CLI
// bundle: they start once, so a bundle would save them little, and they read
// files relative to their own modules (migrations, the viewer's assets, the
// agent's launcher script, PGlite's and pino's files) that bundling would move.
// bin/guru.js sends these names to the sources; scripts/build-cli.ts leaves
// these modules out of the bundle.
export const longRunningCommands = {
  server: "cli/server-command.ts",
  agent: "cli/agent-command.ts",
  start: "cli/start-command.ts",
  mcp: "mcp/main.ts",
};
