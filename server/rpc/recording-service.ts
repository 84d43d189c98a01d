// RecordingService over the recording domain: list, and a recording streamed
// as its description followed by its asciicast text.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { RecordingSchema, type Recording, type RecordingService } from "../../gen/guru/api/v1/terminal_pb.js";
import type { RecordingService as RecordingDomain } from "../domain/recordings.ts";
import type { TerminalRecord } from "../store/terminals.ts";
import { principalOf } from "./context.ts";
import { timestamp } from "./convert.ts";

function toApiRecording(r: TerminalRecord): Recording {
  return create(RecordingSchema, {
    recordingId: r.id,
    sessionId: r.sessionId ?? "",
    agentId: r.agentId ?? "",
    technicianId: r.technicianId ?? "",
    startedAt: timestamp(r.at),
    endedAt: timestamp(r.endedAt),
    columns: r.columns ?? 0,
    rows: r.rows ?? 0,
    command: r.command ?? "",
    shell: r.shell ?? "",
    exitCode: r.exitCode ?? undefined,
    inputBytes: BigInt(r.inputBytes),
    outputBytes: BigInt(r.outputBytes),
    recordingBytes: BigInt(r.recordingBytes),
    truncated: r.recordingTruncated,
    outcome: r.outcome,
  });
}

export function recordingServiceImpl(recordings: RecordingDomain): ServiceImpl<typeof RecordingService> {
  return {
    async listRecordings(req, ctx) {
      const rows = await recordings.list(principalOf(ctx), {
        sessionId: req.sessionId,
        agentId: req.agentId,
        allTechnicians: req.allTechnicians,
        limit: req.limit,
      });
      return { recordings: rows.map(toApiRecording) };
    },
    async *readRecording(req, ctx) {
      for await (const part of recordings.read(principalOf(ctx), req.recordingId)) {
        if ("recording" in part) yield { event: { case: "recording", value: toApiRecording(part.recording) } };
        else yield { event: { case: "data", value: part.data } };
      }
    },
  };
}
