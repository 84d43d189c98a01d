// Records one terminal as asciicast v2 into the database: events are encoded
// as they happen and written as numbered chunks every flushIntervalMs or
// flushBytes, whichever comes first. output() waits while more than
// maxPendingBytes are unwritten, so a terminal never outruns its recording
// (the wait reaches the agent through the channel's credit). Past
// maxOutputBytes of output, output is no longer stored (a marker says so);
// input and resizes always are.
//
// Chunks are stored gzip-compressed: terminal output is repetitive text
// (`yes`, logs, redraws), and the embedded database takes about 200 ms to
// store 256 KiB of bytea against 4 ms for the same chunk compressed, time
// during which every other query (a command's session check) waits.
import { promisify } from "node:util";
import { gunzip as gunzipCb, gzip as gzipCb } from "node:zlib";
import { encodeEvent, encodeHeader } from "../../lib/asciicast.ts";
import type { Logger } from "../../lib/logging.ts";
import type { TerminalsRepository } from "../store/terminals.ts";

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

/** A stored chunk back to its asciicast text. */
export async function decodeChunk(stored: Uint8Array): Promise<Buffer> {
  return gunzip(stored);
}

export interface RecorderOptions {
  terminals: Pick<TerminalsRepository, "appendChunk">;
  recordingId: string;
  columns: number;
  rows: number;
  env: Record<string, string>;
  logger: Logger;
  maxOutputBytes: number;
  flushIntervalMs?: number;
  flushBytes?: number;
  maxPendingBytes?: number;
}

export interface Recorder {
  output(data: Uint8Array): Promise<void>;
  input(data: Uint8Array): void;
  resize(columns: number, rows: number): void;
  /** Writes what is left; resolves once every chunk is stored. */
  close(): Promise<{ truncated: boolean }>;
}

export function createRecorder(options: RecorderOptions): Recorder {
  const { terminals, recordingId, logger } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const flushBytes = options.flushBytes ?? 128 * 1024;
  const maxPendingBytes = options.maxPendingBytes ?? 2 * 1024 * 1024;
  const started = performance.now();
  // Separate decoders: a UTF-8 character split across two reads stays whole.
  const outputText = new TextDecoder("utf-8");
  const inputText = new TextDecoder("utf-8");
  let pending: string[] = [
    encodeHeader({ version: 2, width: options.columns, height: options.rows, timestamp: Math.floor(Date.now() / 1000), env: options.env }),
  ];
  let pendingBytes = pending[0].length;
  let unwrittenBytes = pendingBytes;
  let seq = 0;
  let outputBytes = 0;
  let truncated = false;
  let closed = false;
  let writing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let roomWaiters: (() => void)[] = [];

  const now = () => (performance.now() - started) / 1000;

  function add(line: string): void {
    pending.push(line);
    pendingBytes += line.length;
    unwrittenBytes += line.length;
    if (pendingBytes >= flushBytes) flush();
    else timer ??= setTimeout(flush, flushIntervalMs);
  }

  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const data = Buffer.from(pending.join(""), "utf8");
    const chars = pendingBytes;
    pending = [];
    pendingBytes = 0;
    const n = seq++;
    writing = writing
      .then(async () => terminals.appendChunk(recordingId, n, await gzip(data), data.byteLength))
      .catch((err: unknown) => logger.error({ err, recordingId, seq: n }, "could not store a chunk of a terminal recording"))
      .finally(() => {
        unwrittenBytes -= chars;
        if (unwrittenBytes <= maxPendingBytes) {
          const waiters = roomWaiters;
          roomWaiters = [];
          for (const wake of waiters) wake();
        }
      });
  }

  return {
    async output(data) {
      if (closed) return;
      const time = now();
      outputBytes += data.byteLength;
      if (truncated) return;
      if (outputBytes > options.maxOutputBytes) {
        truncated = true;
        add(encodeEvent(time, "m", `output past ${options.maxOutputBytes} bytes is not recorded`));
        return;
      }
      add(encodeEvent(time, "o", outputText.decode(data, { stream: true })));
      if (unwrittenBytes > maxPendingBytes) await new Promise<void>((resolve) => roomWaiters.push(resolve));
    },
    input(data) {
      if (closed) return;
      add(encodeEvent(now(), "i", inputText.decode(data, { stream: true })));
    },
    resize(columns, rows) {
      if (closed) return;
      add(encodeEvent(now(), "r", `${columns}x${rows}`));
    },
    async close() {
      if (!closed) {
        closed = true;
        const tail = outputText.decode();
        if (tail !== "" && !truncated) add(encodeEvent(now(), "o", tail));
        flush();
      }
      await writing;
      return { truncated };
    },
  };
}
