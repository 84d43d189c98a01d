// The small API layer of `guru mcp`: the technician's Connect clients behind
// plain types, every failure turned into a GuruError (mcp/errors.ts). Tools
// never see generated messages, bigints or ConnectErrors.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Agent } from "../gen/guru/api/v1/agents_pb.js";
import { Shell } from "../gen/guru/api/v1/exec_pb.js";
import { FileType } from "../gen/guru/api/v1/files_pb.js";
import { IntegrationService } from "../gen/guru/integration/v1/integration_pb.js";
import { resolveAgent, tunnelTo } from "../cli/connection.ts";
import type { ApiClients } from "../lib/api-client.ts";
import { apiExitReasons, apiOutputStreams, apiShells } from "../lib/wire/exec-enums.ts";
import type { ExitReasonName as KnownExitReason, ShellName } from "../lib/wire/shells.ts";
import { fromApiError } from "./errors.ts";
import { createSystemApi } from "./system-api.ts";

export interface AgentInfo {
  id: string;
  name: string;
  online: boolean;
  lastSeenAt: Date | null;
  hostname: string;
  os: string;
  osRelease: string;
  arch: string;
  agentVersion: string;
  revoked: boolean;
  /** What the agent can do now: its policy allows it and its OS supports it. */
  capabilities: string[];
}

export type { ShellName };
export type ExitReasonName = KnownExitReason | "unknown";

export interface CommandSpec {
  command: string;
  shell?: ShellName;
  workingDir?: string;
  timeoutMs?: number;
}

export interface CommandOutcome {
  exitCode: number;
  signal: string | null;
  durationMs: number;
  reason: ExitReasonName;
  stdoutBytes: number;
  stderrBytes: number;
  /** The server counted output it did not send (over its per-stream cap). */
  truncated: boolean;
}

export type CommandEvent = { type: "output"; stream: "stdout" | "stderr"; data: Uint8Array } | { type: "result"; result: CommandOutcome };

export type ReadEvent =
  | { type: "info"; path: string; size: number; mimeType: string }
  | { type: "chunk"; offset: number; data: Uint8Array }
  | { type: "summary"; size: number; bytesSent: number; sha256: string };

export type EntryType = "file" | "dir" | "symlink" | "other";

export interface DirEntry {
  name: string;
  type: EntryType;
  size: number;
  mode: number;
  modifiedAt: string | null;
}

const entryTypes: Partial<Record<FileType, EntryType>> = {
  [FileType.FILE]: "file",
  [FileType.DIR]: "dir",
  [FileType.SYMLINK]: "symlink",
  [FileType.OTHER]: "other",
};

function toAgentInfo(a: Agent): AgentInfo {
  return {
    id: a.agentId,
    name: a.name,
    online: a.online,
    lastSeenAt: a.lastSeenAt ? timestampDate(a.lastSeenAt) : null,
    hostname: a.hostname,
    os: a.os,
    osRelease: a.osRelease,
    arch: a.arch,
    agentVersion: a.agentVersion,
    revoked: a.revoked,
    capabilities: [...a.capabilities],
  };
}

/** Runs an API call, turning its failure into a GuruError. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromApiError(err);
  }
}

/** A server stream whose failures arrive as GuruErrors. */
async function* stream<M, T>(source: () => AsyncIterable<M>, map: (m: M) => T | undefined): AsyncGenerator<T> {
  try {
    for await (const message of source()) {
      const item = map(message);
      if (item !== undefined) yield item;
    }
  } catch (err) {
    throw fromApiError(err);
  }
}

// How long a listing may answer for an agent whose tunnel we hold: a lookup
// is a database query on the server (about 6 ms), more than the rest of a
// tool call; a stale answer costs nothing, as the tunnel call itself fails
// when the agent has gone.
const agentCacheMs = 30_000;

export function createGuruApi(deps: { clients: ApiClients; url: string }) {
  let known: { at: number; agents: Agent[] } | undefined;
  const clients: ApiClients = {
    ...deps.clients,
    agents: {
      async listAgents(req, options) {
        const res = await deps.clients.agents.listAgents(req, options);
        if (!req?.nameContains && !req?.agentId) known = { at: Date.now(), agents: res.agents };
        return res;
      },
    },
  };
  const integration = createClient(IntegrationService, createConnectTransport({ baseUrl: deps.url, httpVersion: "1.1", useBinaryFormat: true }));

  return {
    system: createSystemApi(clients),

    async listAgents(nameContains = ""): Promise<AgentInfo[]> {
      const { agents } = await call(() => clients.agents.listAgents({ nameContains }));
      return agents.map(toAgentInfo);
    },

    /** An agent by id or name (cli/connection.ts rules), with a next step a model can follow. */
    async resolveAgent(nameOrId: string): Promise<AgentInfo> {
      try {
        return toAgentInfo(await resolveAgent(clients, nameOrId));
      } catch (err) {
        // AGENT_NOT_FOUND: the tool result's next step points to list_agents.
        throw fromApiError(err);
      }
    },

    /** An agent by exact id or name from a recent listing, without a call; undefined if none. */
    recentAgent(nameOrId: string): AgentInfo | undefined {
      if (known === undefined || Date.now() - known.at > agentCacheMs) return undefined;
      const match = known.agents.find((a) => a.agentId === nameOrId) ?? known.agents.find((a) => a.name === nameOrId);
      return match === undefined ? undefined : toAgentInfo(match);
    },

    /** This technician's active tunnel to the agent, or a new one. */
    openOrReuseTunnel(agentId: string): Promise<{ sessionId: string; opened: boolean }> {
      return call(() => tunnelTo(clients, agentId));
    },

    async closeTunnel(sessionId: string): Promise<void> {
      await call(() => clients.sessions.closeTunnel({ sessionId }));
    },

    /** The server's feature list (IntegrationService.GetCapabilities needs no credentials). */
    async features(): Promise<string[]> {
      // Bounded: MCP clients give a server only seconds to start.
      const { features } = await call(() => integration.getCapabilities({}, { timeoutMs: 5000 }));
      return features;
    },

    streamCommand(sessionId: string, spec: CommandSpec, signal: AbortSignal): AsyncGenerator<CommandEvent> {
      const req = {
        sessionId,
        command: spec.command,
        shell: spec.shell === undefined ? Shell.UNSPECIFIED : apiShells.toEnum[spec.shell],
        workingDir: spec.workingDir ?? "",
        timeoutMs: spec.timeoutMs ?? 0,
      };
      return stream(
        () => clients.exec.streamCommand(req, { signal }),
        (m): CommandEvent | undefined => {
          if (m.event.case === "output")
            return { type: "output", stream: apiOutputStreams.fromEnum(m.event.value.stream) ?? "stdout", data: m.event.value.data };
          if (m.event.case === "result") {
            const r = m.event.value;
            return {
              type: "result",
              result: {
                exitCode: r.exitCode,
                signal: r.signal || null,
                durationMs: r.durationMs,
                reason: apiExitReasons.fromEnum(r.reason) ?? "unknown",
                stdoutBytes: Number(r.stdoutBytes),
                stderrBytes: Number(r.stderrBytes),
                truncated: r.truncated,
              },
            };
          }
          return undefined;
        },
      );
    },

    readFile(sessionId: string, path: string, offset: number, length: number, signal: AbortSignal): AsyncGenerator<ReadEvent> {
      return stream(
        () => clients.files.readFile({ sessionId, path, offset: BigInt(offset), length: BigInt(length) }, { signal }),
        (m): ReadEvent | undefined => {
          const e = m.event;
          if (e.case === "info") return { type: "info", path: e.value.path, size: Number(e.value.size), mimeType: e.value.mimeType };
          if (e.case === "chunk") return { type: "chunk", offset: Number(e.value.offset), data: e.value.data };
          if (e.case === "summary") return { type: "summary", size: Number(e.value.size), bytesSent: Number(e.value.bytesSent), sha256: e.value.sha256 };
          return undefined;
        },
      );
    },

    async listDirectory(sessionId: string, path: string, pageSize: number, pageToken: string, signal: AbortSignal) {
      const res = await call(() => clients.files.listDirectory({ sessionId, path, pageSize, pageToken }, { signal }));
      const entries: DirEntry[] = res.entries.map((e) => ({
        name: e.name,
        type: entryTypes[e.type] ?? "other",
        size: Number(e.size),
        mode: e.mode,
        modifiedAt: e.modifiedAt ? timestampDate(e.modifiedAt).toISOString() : null,
      }));
      return { path: res.path, entries, nextPageToken: res.nextPageToken, totalEntries: res.totalEntries };
    },

    async startUpload(sessionId: string, path: string, size: number, sha256: string, overwrite: boolean, signal: AbortSignal) {
      const res = await call(() => clients.files.startUpload({ sessionId, path, size: BigInt(size), sha256, overwrite }, { signal }));
      return { uploadId: res.uploadId, committedOffset: Number(res.committedOffset) };
    },

    async uploadChunk(uploadId: string, offset: number, data: Uint8Array, signal: AbortSignal) {
      const res = await call(() => clients.files.uploadChunk({ uploadId, offset: BigInt(offset), data }, { signal }));
      return { committedOffset: Number(res.committedOffset), receivedOffset: Number(res.receivedOffset) };
    },

    async finishUpload(uploadId: string, signal: AbortSignal) {
      const res = await call(() => clients.files.finishUpload({ uploadId }, { signal }));
      return { path: res.path, size: Number(res.size), sha256: res.sha256, backupPath: res.backupPath || null };
    },

    async abortUpload(uploadId: string): Promise<void> {
      await call(() => clients.files.abortUpload({ uploadId }));
    },
  };
}

export type GuruApi = ReturnType<typeof createGuruApi>;
