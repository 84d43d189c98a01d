// `guru recording list [--session S] [--agent A] [--all] [--json]`,
// `guru recording play ID [--speed N] [--max-idle 2s]`,
// `guru recording export ID [--output FILE]`.
// ID is a recording (terminal) id, or a tunnel session id holding exactly one.
// play replays the output with its timing (divided by --speed; pauses longer
// than --max-idle are shortened, as asciinema does); export writes the
// asciicast v2 file that asciinema plays.
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Recording } from "../gen/guru/api/v1/terminal_pb.js";
import type { ApiClients } from "../lib/api-client.ts";
import { parseAsciicast } from "../lib/asciicast.ts";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { connect, resolveAgent, str } from "./connection.ts";
import { parseTimeoutMs } from "./run-command.ts";

const usage =
  "usage: guru recording list [--session SESSION] [--agent AGENT] [--all] [--json] | play ID [--speed N] [--max-idle 2s] | export ID [--output FILE]";
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function recordingCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { positionals, flags } = parseArgs(rest, ["all", "json"]);
  const api = connect(flags);
  switch (sub) {
    case "list":
      return list(api, flags);
    case "play":
    case "export": {
      const [id] = positionals;
      if (id === undefined) throw new GuruError("invalid", usage);
      const text = await read(api, await resolveRecording(api, id));
      if (sub === "export") return exportTo(text, str(flags.output));
      const speed = Number(str(flags.speed) ?? "1");
      if (!Number.isFinite(speed) || speed <= 0) throw new GuruError("invalid", `--speed "${str(flags.speed)}" must be a positive number`);
      const maxIdleMs = flags["max-idle"] === undefined ? Infinity : parseTimeoutMs(str(flags["max-idle"]));
      await play(text, { speed, maxIdleMs });
      return 0;
    }
    default:
      throw new GuruError("invalid", usage);
  }
}

async function list(api: ApiClients, flags: Record<string, string | string[] | boolean>): Promise<number> {
  const agentFlag = str(flags.agent);
  const agentId = agentFlag === undefined ? "" : (await resolveAgent(api, agentFlag)).agentId;
  const { recordings } = await api.recordings.listRecordings({ sessionId: str(flags.session) ?? "", agentId, allTechnicians: flags.all === true });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(recordings.map(describe))}\n`);
    return 0;
  }
  if (recordings.length === 0) {
    process.stdout.write("no recordings\n");
    return 0;
  }
  for (const r of recordings.map(describe)) {
    const what = r.command === "" ? `shell${r.shell ? ` (${r.shell})` : ""}` : r.command;
    process.stdout.write(
      `${r.recordingId}  ${r.startedAt}  ${r.outcome}${r.exitCode === null ? "" : ` ${r.exitCode}`}  ${r.durationS}s  ${r.recordingBytes} B  session ${r.sessionId}  ${what}\n`,
    );
  }
  return 0;
}

function describe(r: Recording) {
  const started = r.startedAt ? timestampDate(r.startedAt) : undefined;
  const ended = r.endedAt ? timestampDate(r.endedAt) : undefined;
  return {
    recordingId: r.recordingId,
    sessionId: r.sessionId,
    agentId: r.agentId,
    technicianId: r.technicianId,
    startedAt: started?.toISOString() ?? "",
    endedAt: ended?.toISOString() ?? null,
    durationS: started && ended ? ((ended.getTime() - started.getTime()) / 1000).toFixed(1) : "-",
    command: r.command,
    shell: r.shell,
    outcome: r.outcome,
    exitCode: r.exitCode ?? null,
    recordingBytes: Number(r.recordingBytes),
    truncated: r.truncated,
  };
}

/** A recording id, or a tunnel session's one recording. */
async function resolveRecording(api: ApiClients, id: string): Promise<string> {
  if (!uuidPattern.test(id)) throw new GuruError("invalid", `"${id}" is not a recording or session id`);
  const { recordings } = await api.recordings.listRecordings({ sessionId: id });
  if (recordings.length === 0) return id;
  if (recordings.length === 1) return recordings[0].recordingId;
  throw new GuruError("invalid", `session ${id} has ${recordings.length} recordings; name one: ${recordings.map((r) => r.recordingId).join(", ")}`);
}

async function read(api: ApiClients, recordingId: string): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const message of api.recordings.readRecording({ recordingId })) {
    if (message.event.case === "data") parts.push(message.event.value);
  }
  return Buffer.concat(parts).toString("utf8");
}

async function exportTo(text: string, file: string | undefined): Promise<number> {
  const out = file === undefined ? process.stdout : createWriteStream(file, { mode: 0o600 });
  if (!out.write(text)) await once(out, "drain");
  if (file !== undefined) {
    out.end();
    await once(out, "finish");
  }
  return 0;
}

async function play(text: string, options: { speed: number; maxIdleMs: number }): Promise<void> {
  const { events } = parseAsciicast(text);
  let last = 0;
  for (const event of events) {
    if (event.code !== "o") continue;
    const waitMs = Math.min(((event.time - last) * 1000) / options.speed, options.maxIdleMs);
    last = event.time;
    if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
    if (!process.stdout.write(event.data)) await once(process.stdout, "drain");
  }
}
