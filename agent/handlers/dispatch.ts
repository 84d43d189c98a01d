// Routes an opened channel to the handler of its request. Each handler is a
// thin adapter: wire request in, domain call, wire result out.
import type { ChannelOpen } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { Channel } from "../../lib/wire/link.ts";
import type { UploadManager } from "../files/uploads.ts";
import type { ProcessLauncher } from "../exec/launcher/launcher.ts";
import type { ExecSetup } from "../exec/run-command.ts";
import type { OperationLog } from "../oplog/operation-log.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import type { LocalPolicy } from "../policy/local-policy.ts";
import type { TerminalRegistry } from "../pty/terminal-registry.ts";
import type { TunnelState } from "../tunnel-state.ts";
import { handleExec } from "./exec-handler.ts";
import { handleFileRead, handleFileWrite, handleListDirectory, handleStat } from "./file-handlers.ts";
import { handlePty } from "./pty-handler.ts";
import type { SystemManager } from "../system/system-manager.ts";
import {
  handleRegistryDelete,
  handleRegistryList,
  handleRegistryRead,
  handleRegistryWrite,
  handleServiceControl,
  handleServiceList,
} from "./system-handlers.ts";

export interface HandlerContext {
  tunnel: TunnelState;
  logger: Logger;
  policy: LocalPolicy;
  pathGuard: PathGuard;
  oplog: OperationLog;
  uploads: UploadManager;
  launcher: ProcessLauncher;
  /** Shell paths and the commands' base environment, found at agent start. */
  execSetup?: ExecSetup;
  chunkBytes: number;
  /** Running terminals by tunnel session. */
  terminals: TerminalRegistry;
  system: SystemManager;
}

export async function dispatchChannel(channel: Channel, open: ChannelOpen, ctx: HandlerContext): Promise<void> {
  const request = open.request;
  // A terminal runs commands: it needs what the person approved for commands, as the server's viewer check does.
  if (request.case === "exec" || request.case === "pty") ctx.tunnel.requireCapability("exec");
  else if (request.case !== undefined) ctx.tunnel.requireCapability("files");
  switch (request.case) {
    case "exec":
      return handleExec(channel, request.value, ctx);
    case "stat":
      return handleStat(channel, request.value, ctx);
    case "listDirectory":
      return handleListDirectory(channel, request.value, ctx);
    case "fileRead":
      return handleFileRead(channel, request.value, ctx);
    case "fileWrite":
      return handleFileWrite(channel, request.value, ctx);
    case "pty":
      return handlePty(channel, request.value, ctx);
    case "serviceList":
      return handleServiceList(channel, request.value, ctx);
    case "serviceControl":
      return handleServiceControl(channel, request.value, ctx);
    case "registryList":
      return handleRegistryList(channel, request.value, ctx);
    case "registryRead":
      return handleRegistryRead(channel, request.value, ctx);
    case "registryWrite":
      return handleRegistryWrite(channel, request.value, ctx);
    case "registryDelete":
      return handleRegistryDelete(channel, request.value, ctx);
    default:
      throw new GuruError("invalid", `this agent does not know the operation ${request.case ?? "(none)"}; upgrade the agent`);
  }
}
