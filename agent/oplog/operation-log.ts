// The agent's own record of every operation it performed or refused: who,
// what, when, result. It lives on the endpoint so its owner has a history that
// does not depend on the server (which keeps its own audit log).
//
// Format: JSON lines, one entry per line:
//   {"at":"2025-01-01T12:00:00.000Z","technicianId":"t1","sessionId":"s1","operation":"exec","result":"ok","detail":{...}}
// Rotation by size: when the next line would take the file past maxBytes, the
// file becomes <file>.1, <file>.1 becomes <file>.2, ... and the oldest beyond
// maxFiles (the live file included) is deleted. One entry is never split.
//
// The log must never break the operation it records: record() does not throw;
// a failure is logged as a warning and the next record() tries again (it
// reopens the file). Writes are serialised through one queue, so lines never
// interleave. Entries reach the OS at once but are not fsynced: they survive
// an agent crash, not a power cut.
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { createLogger, type Logger } from "../../lib/logging.ts";

export interface OperationLogEntry {
  /** Defaults to now. */
  at?: Date;
  technicianId: string;
  sessionId: string;
  operation: string;
  detail: Record<string, unknown>;
  result: string;
}

export interface OperationLogOptions {
  file: string;
  /** Size at which the live file is rotated. */
  maxBytes: number;
  /** Files kept, the live one included (>= 1). */
  maxFiles: number;
  /** An entry longer than this has its long detail strings shortened. */
  maxEntryBytes?: number;
  /** Where failures to write the log are reported. */
  logger?: Logger;
}

export interface OperationLog {
  record(entry: OperationLogEntry): Promise<void>;
  close(): Promise<void>;
}

export const defaultOperationLogMaxBytes = 10 * 1024 * 1024;
export const defaultOperationLogMaxFiles = 5;
const defaultMaxEntryBytes = 64 * 1024;
const shortenedStringChars = 1024;

export function createOperationLog(options: OperationLogOptions): OperationLog {
  const { file } = options;
  if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) throw new RangeError("maxBytes must be a positive integer");
  if (!Number.isSafeInteger(options.maxFiles) || options.maxFiles < 1) throw new RangeError("maxFiles must be at least 1");
  const maxEntryBytes = options.maxEntryBytes ?? defaultMaxEntryBytes;
  const logger = options.logger ?? createLogger({ name: "oplog" });

  let handle: FileHandle | null = null;
  let size = 0;
  let closed = false;
  let queue: Promise<void> = Promise.resolve();

  async function ensureOpen(): Promise<FileHandle> {
    if (handle !== null) return handle;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    // 0o600: the record names technicians and commands; it is the owner's.
    const opened = await open(file, "a", 0o600);
    try {
      size = (await opened.stat()).size;
    } catch (err) {
      await opened.close();
      throw err;
    }
    handle = opened;
    return opened;
  }

  async function closeHandle(): Promise<void> {
    const h = handle;
    handle = null;
    if (h !== null) await h.close();
  }

  async function rotate(): Promise<void> {
    await closeHandle();
    const last = options.maxFiles - 1;
    // With maxFiles 1 the live file is simply dropped.
    await rm(last === 0 ? file : `${file}.${last}`, { force: true });
    for (let n = last - 1; n >= 1; n--) await renameIfExists(`${file}.${n}`, `${file}.${n + 1}`);
    if (last >= 1) await renameIfExists(file, `${file}.1`);
  }

  async function write(line: string): Promise<void> {
    const bytes = Buffer.byteLength(line);
    await ensureOpen();
    if (size > 0 && size + bytes > options.maxBytes) await rotate();
    const h = await ensureOpen();
    await h.write(line);
    size += bytes;
  }

  function record(entry: OperationLogEntry): Promise<void> {
    if (closed) {
      logger.warn({ operation: entry.operation }, "operation log is closed; entry dropped");
      return Promise.resolve();
    }
    const line = formatEntry(entry, maxEntryBytes, logger);
    const done = queue
      .then(() => write(line))
      .catch(async (err: unknown) => {
        logger.warn({ err, file, operation: entry.operation }, "could not write the operation log");
        // Start from a fresh handle next time (the file may have been removed or the disk replaced).
        await closeHandle().catch(() => {});
      });
    queue = done;
    return done;
  }

  async function close(): Promise<void> {
    if (closed) return queue;
    closed = true;
    queue = queue.then(() => closeHandle()).catch((err: unknown) => logger.warn({ err, file }, "could not close the operation log"));
    return queue;
  }

  return { record, close };
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function formatEntry(entry: OperationLogEntry, maxEntryBytes: number, logger: Logger): string {
  const head = {
    at: (entry.at ?? new Date()).toISOString(),
    technicianId: entry.technicianId,
    sessionId: entry.sessionId,
    operation: entry.operation,
    result: entry.result,
  };
  let line: string;
  try {
    line = `${JSON.stringify({ ...head, detail: entry.detail })}\n`;
  } catch (err) {
    // A detail that cannot be serialised (a cycle, a BigInt) must not cost the entry itself.
    logger.warn({ err, operation: entry.operation }, "operation log detail could not be serialised");
    return `${JSON.stringify({ ...head, detail: { unserializable: true } })}\n`;
  }
  if (Buffer.byteLength(line) <= maxEntryBytes) return line;
  // Keep the entry (the record matters more than its size) but shorten long strings.
  const detail: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry.detail)) {
    if (typeof value === "string" && value.length > shortenedStringChars) {
      detail[key] = `${value.slice(0, shortenedStringChars)}…[${value.length - shortenedStringChars} more characters]`;
    } else {
      detail[key] = value;
    }
  }
  line = `${JSON.stringify({ ...head, detail: { ...detail, shortened: true } })}\n`;
  if (Buffer.byteLength(line) <= maxEntryBytes) return line;
  return `${JSON.stringify({ ...head, detail: { shortened: true, originalBytes: Buffer.byteLength(line) } })}\n`;
}
