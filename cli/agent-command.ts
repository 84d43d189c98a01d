import { join, resolve } from "node:path";
import { startAgent } from "../agent/agent.ts";
import { loadAgentConfig } from "../agent/config.ts";
import { forgetAgentKeyEnv, readAgentKey } from "../agent/agent-key.ts";
import { createProcessLauncher } from "../agent/exec/launcher/launcher.ts";
import { createExecSetup } from "../agent/exec/run-command.ts";
import { createUploadManager } from "../agent/files/uploads.ts";
import { createOperationLog } from "../agent/oplog/operation-log.ts";
import { createPathGuard } from "../agent/policy/path-guard.ts";
import { loadLocalPolicy } from "../agent/policy/local-policy.ts";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { defaultWireLimits } from "../lib/wire/limits.ts";
import { untilSignal } from "./signals.ts";

export async function agentCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv);
  let config: ReturnType<typeof loadAgentConfig>;
  try {
    config = loadAgentConfig({ flags });
  } finally {
    // Right after reading it, whatever happens next: nothing this process
    // starts later may inherit the key.
    forgetAgentKeyEnv();
  }
  if (config.serverUrl === undefined) throw new GuruError("invalid", "no server: pass --server URL or set GURU_SERVER");
  const key = await readAgentKey({ keyFile: config.keyFile, key: config.key });
  const logger = createLogger({ level: config.logLevel, name: "guru-agent", file: process.env.GURU_LOG_FILE || undefined }).child(config.name ? { agent: config.name } : {});

  const policy = await loadLocalPolicy({
    file: config.policyFile,
    defaults: { allowedPaths: (config.allow ?? [process.cwd()]).map((p) => resolve(p)) },
  });
  const pathGuard = createPathGuard(policy.allowedPaths);
  const oplog = createOperationLog({ file: join(config.stateDir, "operations.log"), maxBytes: 10 * 1024 * 1024, maxFiles: 5 });
  const uploads = createUploadManager({ stateDir: join(config.stateDir, "uploads"), logger, keepBackupDefault: config.keepBackups, abandonedAfterMs: config.uploadAbandonedMs });
  const launcher = await createProcessLauncher(config.processLauncher, logger);
  const execSetup = createExecSetup();
  logger.info({ shells: execSetup.shellPaths }, "shells found");
  const capabilities = Object.entries(policy.capabilities).filter(([, on]) => on).map(([name]) => name);

  const agent = startAgent({
    serverUrl: config.serverUrl,
    key,
    logger,
    capabilities,
    backoff: { maxMs: config.backoffMaxMs },
    handlers: { policy, pathGuard, oplog, uploads, launcher, execSetup, chunkBytes: defaultWireLimits.chunkBytes },
  });
  const sweep = setInterval(() => void uploads.sweepAbandoned().catch(() => undefined), 3600_000);
  sweep.unref();
  logger.info({ server: config.serverUrl, allowedPaths: policy.allowedPaths, capabilities }, "agent starting");
  const signal = await untilSignal();
  logger.info({ signal }, "agent stopping");
  clearInterval(sweep);
  await agent.close();
  await launcher.close();
  await oplog.close();
  return 0;
}
