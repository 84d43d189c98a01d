// Reusable buffers for outgoing data frames. A fresh 1 MiB buffer per frame
// costs page faults and, being external memory, drives V8 into a full GC
// every few dozen MiB sent. A frame's buffer comes back once the socket has
// written it out (its send callback) and only for sockets whose peer gets its
// own copy (a real WebSocket; not the in-memory test pair, whose peer decodes
// views of the very bytes sent). Process-wide and small: idle links hold nothing.

export interface FramePool {
  /** A buffer of `size` bytes, pooled when it fits the pool's buffers. */
  take(size: number): { bytes: Uint8Array; release: (() => void) | undefined };
}

export function createFramePool(bufferBytes: number, maxFree: number): FramePool {
  const free: Buffer[] = [];
  return {
    take(size) {
      if (size > bufferBytes || size < bufferBytes / 2) return { bytes: Buffer.allocUnsafe(size), release: undefined };
      const buffer = free.pop() ?? Buffer.allocUnsafe(bufferBytes);
      let released = false;
      return {
        bytes: buffer.subarray(0, size),
        release: () => {
          if (released) return;
          released = true;
          if (free.length < maxFree) free.push(buffer);
        },
      };
    },
  };
}

const pools = new Map<number, FramePool>();

/** The process's pool for frames of up to `bufferBytes` (one per frame size in use; 8 buffers each at most). */
export function sharedFramePool(bufferBytes: number): FramePool {
  let pool = pools.get(bufferBytes);
  if (pool === undefined) {
    pool = createFramePool(bufferBytes, 8);
    pools.set(bufferBytes, pool);
  }
  return pool;
}
