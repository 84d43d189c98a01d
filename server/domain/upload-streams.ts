// The live side of uploads: per upload id, the open agent channel, the offset
// received so far, a small ordering gate for pipelined chunks that arrive out
// of order (separate HTTP/1.1 connections race), and batched writes of the
// committed offset to the database.
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { Store } from "../store/index.ts";
import type { UploadRecord } from "../store/uploads.ts";
import type { AgentFiles, AgentUploadStream, UploadOutcome } from "./agent-files.ts";
import type { SessionWork } from "./session-work.ts";

export interface LiveUpload {
  row: UploadRecord;
  stream: AgentUploadStream | undefined;
  sessionId: string | undefined;
  /** Bytes accepted for the agent (sent or queued on the channel); a resume resets it to the agent's committed offset. */
  received: number;
  /** When the session and row were last checked. */
  checkedAt: number;
  opening: Promise<LiveUpload> | undefined;
  waiters: Set<() => void>;
  persistedOffset: number;
  persistedAt: number;
  persisting: boolean;
  /** Ends the channel's registration in its tunnel's work. */
  untrack: (() => void) | undefined;
}

export interface UploadStreamsOptions {
  store: Store;
  agents: AgentFiles;
  logger: Logger;
  /** Upload channels by tunnel: a tunnel that ends closes its channels (the partial stays for a resume). */
  work?: SessionWork;
  /** How long a checked session counts as still active for the next chunks. */
  sessionCheckMs?: number;
  /** Committed offsets reach the database at most this often, or after this many bytes. */
  persistEveryMs?: number;
  persistEveryBytes?: number;
  /** A chunk may arrive at most this far ahead of the received offset, and wait at most this long for its turn. */
  maxAheadBytes?: number;
  orderWaitMs?: number;
}

const MiB = 1024 * 1024;
/** Finished results kept for a FinishUpload retried after a lost response. */
const maxRememberedResults = 1000;

export function createUploadStreams(options: UploadStreamsOptions) {
  const { store, agents, logger } = options;
  const sessionCheckMs = options.sessionCheckMs ?? 1000;
  const persistEveryMs = options.persistEveryMs ?? 2000;
  const persistEveryBytes = options.persistEveryBytes ?? 64 * MiB;
  const maxAheadBytes = options.maxAheadBytes ?? 64 * MiB;
  const orderWaitMs = options.orderWaitMs ?? 2000;
  const live = new Map<string, LiveUpload>();
  const results = new Map<string, UploadOutcome>();

  const alive = (l: LiveUpload) => l.stream !== undefined && l.stream.failure === undefined;

  function wake(l: LiveUpload): void {
    for (const w of [...l.waiters]) w();
  }

  function persist(l: LiveUpload, force = false): void {
    const committed = l.stream?.committedOffset ?? l.persistedOffset;
    if (l.persisting || committed <= l.persistedOffset) return;
    if (!force && committed - l.persistedOffset < persistEveryBytes && Date.now() - l.persistedAt < persistEveryMs) return;
    l.persisting = true;
    l.persistedAt = Date.now();
    void store.uploads
      .setCommitted(l.row.id, committed)
      .then(() => (l.persistedOffset = Math.max(l.persistedOffset, committed)))
      .catch((err: unknown) => logger.warn({ err, uploadId: l.row.id }, "could not record an upload's committed offset"))
      .finally(() => (l.persisting = false));
  }

  function entry(row: UploadRecord): LiveUpload {
    let l = live.get(row.id);
    if (l === undefined) {
      l = {
        row,
        stream: undefined,
        sessionId: undefined,
        received: 0,
        checkedAt: 0,
        opening: undefined,
        waiters: new Set(),
        persistedOffset: row.committedOffset,
        persistedAt: Date.now(),
        persisting: false,
        untrack: undefined,
      };
      live.set(row.id, l);
    }
    l.row = row;
    return l;
  }

  /** The live upload with an open channel in `sessionId`; opens (or reopens) one when needed. */
  async function attach(row: UploadRecord, sessionId: string): Promise<LiveUpload> {
    const l = entry(row);
    while (l.opening) await l.opening.catch(() => {});
    if (alive(l) && l.sessionId === sessionId) {
      l.checkedAt = Date.now();
      return l;
    }
    // A new tunnel of the same technician: the old channel (if any) gives way.
    if (alive(l)) l.stream?.detach("the technician's tunnel changed");
    l.opening = (async () => {
      const stream = await agents.openUpload(
        row.agentId,
        {
          uploadId: row.id,
          sessionId,
          path: row.path,
          size: row.size,
          sha256: row.sha256 ?? "",
          overwrite: row.overwrite,
          keepBackup: row.keepBackup ?? undefined,
        },
        {
          onEnd: (ended) => {
            if (l.stream !== ended) return;
            persist(l, true);
            wake(l);
          },
        },
      );
      l.stream = stream;
      l.sessionId = sessionId;
      l.untrack?.();
      l.untrack = options.work?.track({ sessionId, technicianId: row.technicianId ?? "" }, (reason) => {
        // Detached, not aborted: the agent keeps the partial and a new tunnel resumes it.
        if (l.stream === stream) stream.detach(`the tunnel ended (${reason})`);
        wake(l);
      });
      l.received = stream.committedOffset;
      if (stream.committedOffset < l.persistedOffset) {
        // The agent has fewer bytes than recorded (lost in a crash): the record follows the agent.
        l.persistedOffset = stream.committedOffset;
        await store.uploads.setCommitted(row.id, stream.committedOffset);
      }
      l.checkedAt = Date.now();
      logger.debug({ uploadId: row.id, sessionId, committedOffset: stream.committedOffset }, "upload channel open");
      wake(l);
      return l;
    })();
    try {
      return await l.opening;
    } finally {
      l.opening = undefined;
    }
  }

  function waitTurn(l: LiveUpload, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        l.waiters.delete(wakeUp);
        resolve(ok);
      };
      const wakeUp = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      l.waiters.add(wakeUp);
    });
  }

  /**
   * Accepts bytes at `offset`: what the agent already has is skipped (a retry
   * is harmless), a gap is refused naming the expected offset.
   */
  async function write(l: LiveUpload, offset: number, data: Uint8Array): Promise<void> {
    const deadline = Date.now() + orderWaitMs;
    while (offset > l.received) {
      const expected = () =>
        new GuruError("failed_precondition", `expected offset ${l.received}, got ${offset}; resume from GetUpload's committed offset`, {
          reason: "UPLOAD_OFFSET_MISMATCH",
          metadata: { uploadId: l.row.id, expectedOffset: l.received, offset },
        });
      if (!alive(l) || offset - l.received > maxAheadBytes) throw expected();
      if (!(await waitTurn(l, deadline - Date.now())) && offset > l.received) throw expected();
    }
    const stream = l.stream;
    if (stream === undefined || stream.failure)
      throw stream?.failure ?? new GuruError("unavailable", "the upload channel is closed; call GetUpload and resume");
    const end = offset + data.byteLength;
    if (end <= l.received) return;
    const from = l.received;
    l.received = end;
    wake(l);
    await stream.write(from, data.subarray(from - offset));
    persist(l);
  }

  return {
    get: (uploadId: string) => live.get(uploadId),
    /** Open, and checked recently enough to skip the database. */
    fresh: (l: LiveUpload) => alive(l) && Date.now() - l.checkedAt < sessionCheckMs,
    attach,
    write,
    finished(uploadId: string, outcome: UploadOutcome) {
      live.get(uploadId)?.untrack?.();
      live.delete(uploadId);
      results.set(uploadId, outcome);
      if (results.size > maxRememberedResults) results.delete(results.keys().next().value as string);
    },
    finishedResult: (uploadId: string) => results.get(uploadId),
    /** Drops the live state; a channel still open is detached (the agent keeps or has removed the partial). */
    forget(uploadId: string) {
      const l = live.get(uploadId);
      if (l === undefined) return;
      live.delete(uploadId);
      l.untrack?.();
      if (alive(l)) l.stream?.detach("upload ended");
      wake(l);
    },
    /** Server shutdown: record every committed offset, keep the agents' partials. */
    async close() {
      const writes: Promise<unknown>[] = [];
      for (const l of live.values()) {
        const committed = l.stream?.committedOffset ?? 0;
        if (committed > l.persistedOffset) writes.push(store.uploads.setCommitted(l.row.id, committed).catch(() => {}));
        l.untrack?.();
        if (alive(l)) l.stream?.detach("the server is shutting down");
      }
      await Promise.all(writes);
      live.clear();
    },
  };
}
