import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { handleUnhandledRejections } from "../lib/unhandled-rejections.ts";
import { usePrivateUmask } from "../lib/private-dir.ts";
import { loadServerConfig } from "../server/config.ts";
import { startServer } from "../server/server.ts";
import { untilSignal } from "./signals.ts";

export async function serverCommand(argv: string[]): Promise<number> {
  // Before anything is created: database files, keys and tokens are the server user's alone.
  usePrivateUmask();
  const { flags } = parseArgs(argv);
  const config = loadServerConfig({ flags });
  const logger = createLogger({ level: config.logLevel, name: "guru-server" });
  const server = await startServer({ config, logger });
  handleUnhandledRejections({ logger, onRejection: () => server.metrics.unhandledRejections.inc() });
  // SIGUSR2 drains: no new agent links, current ones told to reconnect elsewhere; stop the process afterwards.
  const onDrain = () => void server.drain().catch((err: unknown) => logger.error({ err }, "drain failed"));
  process.on("SIGUSR2", onDrain);
  const signal = await untilSignal();
  process.off("SIGUSR2", onDrain);
  logger.info({ signal }, "draining");
  await server.close();
  return 0;
}
