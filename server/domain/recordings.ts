// Reading terminal recordings: a technician sees their own, an admin anyone's.
// A recording is read in chunks so memory stays bounded whatever its size.
import { GuruError } from "../../lib/errors.ts";
import { decodeChunk } from "../recordings/recorder.ts";
import type { Store } from "../store/index.ts";
import type { TerminalRecord } from "../store/terminals.ts";
import { requireUuid } from "./ids.ts";
import { requireAdmin, type Principal } from "./principal.ts";

export interface RecordingFilter {
  sessionId?: string;
  agentId?: string;
  allTechnicians?: boolean;
  limit?: number;
}

const maxListLimit = 1000;
const chunksPerRead = 16;

export function createRecordingService(deps: { store: Pick<Store, "terminals"> }) {
  const { store } = deps;

  async function list(principal: Principal, filter: RecordingFilter): Promise<TerminalRecord[]> {
    if (filter.sessionId) requireUuid(filter.sessionId, "session id");
    if (filter.agentId) requireUuid(filter.agentId, "agent id");
    if (filter.allTechnicians) requireAdmin(principal);
    const limit = filter.limit || 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > maxListLimit) throw new GuruError("invalid", `limit must be from 1 to ${maxListLimit}`);
    return store.terminals.list({
      sessionId: filter.sessionId || undefined,
      agentId: filter.agentId || undefined,
      technicianId: filter.allTechnicians ? undefined : principal.technicianId,
      recorded: true,
      limit,
    });
  }

  async function get(principal: Principal, recordingId: string): Promise<TerminalRecord> {
    requireUuid(recordingId, "recording id");
    const row = await store.terminals.get(recordingId);
    if (row === undefined || row.recordingId === null)
      throw new GuruError("not_found", `no recording ${recordingId}`, { reason: "RECORDING_NOT_FOUND", metadata: { recordingId } });
    if (row.technicianId !== principal.technicianId && principal.role !== "admin") {
      throw new GuruError("denied", `recording ${recordingId} belongs to another technician`, { reason: "RECORDING_NOT_OWNED", metadata: { recordingId } });
    }
    return row;
  }

  /** The recording's description, then its asciicast text in order. */
  async function* read(principal: Principal, recordingId: string): AsyncGenerator<{ recording: TerminalRecord } | { data: Uint8Array }> {
    const row = await get(principal, recordingId);
    yield { recording: row };
    for (let after = -1; ; ) {
      const chunks = await store.terminals.readChunks(recordingId, after, chunksPerRead);
      for (const chunk of chunks) yield { data: await decodeChunk(chunk.data) };
      if (chunks.length < chunksPerRead) return;
      after = chunks[chunks.length - 1].seq;
    }
  }

  return { list, get, read };
}

export type RecordingService = ReturnType<typeof createRecordingService>;
