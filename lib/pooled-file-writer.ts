// Writes a stream of pieces to a file, back to back from a position, through
// a few reused buffers. The pieces are views that stay valid only while
// `take` runs (a download's body, read into one reused buffer): each is
// copied into the buffer being filled, and a full buffer is written while the
// next ones fill. Copying a MiB into a reused buffer costs about 25 ms per
// GiB; a fresh buffer per MiB, about 600 ms in page faults and collection.
// With every buffer taken (the disk is behind the network), the writer asks
// its caller to stop until a write completes: memory stays at these buffers.
//
// One write at a time, in order: the file only ever grows by a whole prefix,
// so a process killed mid-download leaves a part file whose length a resume
// can trust (writes completing out of order could leave a hole below the
// end). Writes to one file take its inode lock in turn anyway; more in
// flight only spin on it.

/** About a thousand positioned writes per GiB, each a thread-pool round trip. */
const defaultBufferBytes = 1024 * 1024;
const defaultBuffers = 4;

export interface PooledFileWriter {
  /**
   * Copies `piece` to be written after what came before, before returning.
   * Returns a promise when the room left is less than the largest piece: pass
   * nothing more until it settles. Throws (or the promise rejects with) the
   * first failure of a write.
   */
  take(piece: Uint8Array): Promise<void> | undefined;
  /** Writes what is buffered and waits for every write; throws the first failure. */
  flush(): Promise<void>;
}

export interface PooledFileWriterOptions {
  /** Writes all of `data` at `position`. */
  write: (data: Uint8Array, position: number) => Promise<void>;
  /** Where the first piece goes. */
  position: number;
  /** The largest piece `take` is given: there is always room for one. */
  maxPieceBytes: number;
  /** Called as each write completes, with its size. */
  onWritten?: (bytes: number) => void;
  bufferBytes?: number;
  buffers?: number;
}

export function createPooledFileWriter(o: PooledFileWriterOptions): PooledFileWriter {
  const bufferBytes = o.bufferBytes ?? defaultBufferBytes;
  const buffers = o.buffers ?? defaultBuffers;
  if (o.maxPieceBytes > bufferBytes * buffers) throw new RangeError(`a piece of ${o.maxPieceBytes} bytes cannot fit ${buffers} buffers of ${bufferBytes}`);
  const free: Buffer[] = [];
  let made = 0;
  let current: Buffer | undefined;
  let filled = 0;
  let position = o.position;
  /** The last write queued: each starts when the one before it has completed. */
  let tail: Promise<void> = Promise.resolve();
  let failure: unknown;
  let waiter: { resolve: () => void; reject: (err: unknown) => void } | undefined;

  const room = () => (current === undefined ? 0 : current.byteLength - filled) + (free.length + buffers - made) * bufferBytes;

  const wake = () => {
    const w = waiter;
    if (w === undefined) return;
    if (failure !== undefined) {
      waiter = undefined;
      w.reject(failure);
    } else if (room() >= o.maxPieceBytes) {
      waiter = undefined;
      w.resolve();
    }
  };

  const submit = () => {
    const buffer = current as Buffer;
    const bytes = filled;
    const at = position;
    current = undefined;
    filled = 0;
    position += bytes;
    tail = tail.then(async () => {
      try {
        // After a failure nothing more is written: the bytes would follow a gap.
        if (failure !== undefined) return;
        await o.write(buffer.subarray(0, bytes), at);
        o.onWritten?.(bytes);
      } catch (err) {
        failure ??= err;
      } finally {
        // Reused only now: until its write completes, the thread pool reads from it.
        free.push(buffer);
        wake();
      }
    });
  };

  return {
    take(piece) {
      if (failure !== undefined) throw failure;
      if (piece.byteLength > room()) throw new RangeError(`a piece of ${piece.byteLength} bytes is more than the ${room()} bytes of room promised`);
      for (let from = 0; from < piece.byteLength; ) {
        if (current === undefined) {
          // Made as first needed, never more than `buffers`: the room checked above counts those not made yet.
          current = free.pop();
          if (current === undefined) {
            current = Buffer.allocUnsafe(bufferBytes);
            made++;
          }
        }
        const n = Math.min(piece.byteLength - from, current.byteLength - filled);
        current.set(piece.subarray(from, from + n), filled);
        filled += n;
        from += n;
        if (filled === current.byteLength) submit();
      }
      if (room() >= o.maxPieceBytes) return undefined;
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    async flush() {
      if (filled > 0) submit();
      await tail;
      if (failure !== undefined) throw failure;
    },
  };
}
