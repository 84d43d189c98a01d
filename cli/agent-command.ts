import { join, resolve } from "node:path";
import { startAgent } from "../agent/agent.ts";
import { loadAgentConfig } from "../agent/config.ts";
import { forgetAgentKeyEnv, readAgentKey } from "../agent/agent-key.ts";
import { createProcessLauncher } from "../agent/exec/launcher/launcher.ts";
import { createExecSetup } from "../agent/exec/run-command.ts";
import { createUploadManager } from "../agent/files/uploads.ts";
import { createOperationLog, defaultOperationLogMaxBytes, defaultOperationLogMaxFiles } from "../agent/oplog/operation-log.ts";
import { createPathGuard } from "../agent/policy/path-guard.ts";
import { loadLocalPolicy } from "../agent/policy/local-policy.ts";
import { createTerminalRegistry } from "../agent/pty/terminal-registry.ts";
import { createSystemManager } from "../agent/system/system-manager.ts";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { handleUnhandledRejections } from "../lib/unhandled-rejections.ts";
import { ensurePrivateDir, usePrivateUmask } from "../lib/private-dir.ts";
import { defaultWireLimits } from "../lib/wire/limits.ts";
import { untilSignal } from "./signals.ts";
import { createConsentHandler } from "../agent/consent/consent-handler.ts";
import { createConsentPrompter } from "../agent/consent/prompter.ts";

export async function agentCommand(argv: string[]): Promise<number> {
  // Before anything is created: partial uploads and the operation log are the agent user's alone.
  // The agent's own files are private; commands and the files uploads create
  // for users get GURU_COMMAND_UMASK instead (see the launcher and createUploadManager).
  usePrivateUmask();
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
  const logger = createLogger({ level: config.logLevel, name: "guru-agent", file: process.env.GURU_LOG_FILE || undefined }).child(
    config.name ? { agent: config.name } : {},
  );

  handleUnhandledRejections({ logger });
  const policy = await loadLocalPolicy({
    file: config.policyFile,
    defaults: {
      allowedPaths: (config.allow ?? [process.cwd()]).map((p) => resolve(p)),
      capabilities: Object.fromEntries(config.enable.map((c) => [c, true])),
    },
  });
  const pathGuard = createPathGuard(policy.allowedPaths);
  await ensurePrivateDir(config.stateDir, "agent state dir");
  const oplog = createOperationLog({
    file: join(config.stateDir, "operations.log"),
    maxBytes: defaultOperationLogMaxBytes,
    maxFiles: defaultOperationLogMaxFiles,
  });
  const commandUmask = Number.parseInt(config.commandUmask, 8);
  const uploads = createUploadManager({
    stateDir: join(config.stateDir, "uploads"),
    logger,
    keepBackupDefault: config.keepBackups,
    abandonedAfterMs: config.uploadAbandonedMs,
    newFileMode: 0o644 & ~commandUmask,
  });
  const launcher = await createProcessLauncher(config.processLauncher, logger, process.platform, { commandUmask });
  const execSetup = createExecSetup();
  logger.info({ shells: execSetup.shellPaths }, "shells found");
  const system = createSystemManager({ serviceManager: config.serviceManager, sysvInitDir: resolve(config.sysvInitDir) });
  const capabilities = Object.entries(policy.capabilities)
    .filter(([, on]) => on)
    .map(([name]) => name);

  // A terminal prompt only when a person can see and answer it.
  const terminal = process.stdin.isTTY && process.stderr.isTTY ? { input: process.stdin, output: process.stderr } : undefined;
  const prompter = createConsentPrompter({ command: policy.consent.command, terminal, logger });
  const consent = { policy: policy.consent, handler: createConsentHandler({ policy: policy.consent, prompter, logger }) };
  const agent = startAgent({
    consent,
    serverUrl: config.serverUrl,
    key,
    logger,
    capabilities,
    backoff: { maxMs: config.backoffMaxMs },
    replacedBackoffMs: config.replacedBackoffMs,
    handlers: { policy, pathGuard, oplog, uploads, launcher, execSetup, chunkBytes: defaultWireLimits.chunkBytes, terminals: createTerminalRegistry(), system },
  });
  const sweep = setInterval(() => void uploads.sweepAbandoned().catch(() => undefined), 3600_000);
  sweep.unref();
  logger.info(
    { server: config.serverUrl, allowedPaths: policy.allowedPaths, capabilities, consent: policy.consent.mode, system: system.support },
    "agent starting",
  );
  const signal = await untilSignal();
  logger.info({ signal }, "agent stopping");
  clearInterval(sweep);
  await agent.close();
  await launcher.close();
  await oplog.close();
  return 0;
}
