import { join, resolve } from "node:path";
import { startAgent } from "../agent/agent.ts";
import { loadAgentConfig } from "../agent/config.ts";
import { createProcessLauncher } from "../agent/exec/launcher/launcher.ts";
import { createUploadManager } from "../agent/files/uploads.ts";
import { createOperationLog } from "../agent/oplog/operation-log.ts";
import { createPathGuard } from "../agent/policy/path-guard.ts";
import { loadLocalPolicy } from "../agent/policy/local-policy.ts";
import { createSystemManager } from "../agent/system/system-manager.ts";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { defaultWireLimits } from "../lib/wire/limits.ts";
import { untilSignal } from "./signals.ts";

export async function agentCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv);
  const config = loadAgentConfig({ flags });
  if (config.serverUrl === undefined) throw new GuruError("invalid", "no server: pass --server URL or set GURU_SERVER");
  if (config.key === undefined) throw new GuruError("invalid", "no agent key: set GURU_AGENT_KEY (or --key) to the key shown at enrolment");
  const logger = createLogger({ level: config.logLevel, name: "guru-agent", file: process.env.GURU_LOG_FILE || undefined }).child(config.name ? { agent: config.name } : {});

  const policy = await loadLocalPolicy({
    file: config.policyFile,
    defaults: {
      allowedPaths: (config.allow ?? [process.cwd()]).map((p) => resolve(p)),
      capabilities: Object.fromEntries(config.enable.map((c) => [c, true])),
    },
  });
  const pathGuard = createPathGuard(policy.allowedPaths);
  const oplog = createOperationLog({ file: join(config.stateDir, "operations.log"), maxBytes: 10 * 1024 * 1024, maxFiles: 5 });
  const uploads = createUploadManager({ stateDir: join(config.stateDir, "uploads"), logger, keepBackupDefault: config.keepBackups, abandonedAfterMs: config.uploadAbandonedMs });
  const launcher = await createProcessLauncher(config.processLauncher, logger);
  const system = createSystemManager({ serviceManager: config.serviceManager, sysvInitDir: resolve(config.sysvInitDir) });
  const capabilities = Object.entries(policy.capabilities).filter(([, on]) => on).map(([name]) => name);

  const agent = startAgent({
    serverUrl: config.serverUrl,
    key: config.key,
    logger,
    capabilities,
    backoff: { baseMs: 500, maxMs: config.backoffMaxMs },
    handlers: { policy, pathGuard, oplog, uploads, launcher, chunkBytes: defaultWireLimits.chunkBytes, system },
  });
  const sweep = setInterval(() => void uploads.sweepAbandoned().catch(() => undefined), 3600_000);
  sweep.unref();
  logger.info({ server: config.serverUrl, allowedPaths: policy.allowedPaths, capabilities, system: system.support }, "agent starting");
  const signal = await untilSignal();
  logger.info({ signal }, "agent stopping");
  clearInterval(sweep);
  await agent.close();
  await launcher.close();
  await oplog.close();
  return 0;
}
