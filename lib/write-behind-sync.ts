// Durable files without a long wait at the end. A transfer makes its file
// durable (fsync) before the name points at it, but the kernel starts writing
// dirty pages back only once they are old or many (gigabytes on a machine with
// much memory), so a GiB written at network speed is still almost all in
// memory when that fsync comes, and the transfer then waits for the disk to
// take all of it at once: about 2 s per GiB on a 400 MB/s disk. Asking for a
// datasync every few MiB while the bytes arrive keeps the disk writing beside
// the network, and the final fsync finds only the last few MiB to write.
//
// Measured (1 GiB written at 150 MiB/s, then fsync, ext4 on a 400 MB/s disk):
// the final fsync took 1.9 s without, 20-110 ms with a datasync every 16-64 MiB,
// the writes themselves 2-4 % slower.
import type { FileHandle } from "node:fs/promises";

const MiB = 1024 * 1024;

/** Bytes written between two datasyncs: a tail small enough to flush in tens of ms. */
const defaultSyncEveryBytes = 32 * MiB;

export interface WriteBehindSync {
  /** Counts bytes written to the file; starts a datasync in the background every `everyBytes`. */
  wrote(bytes: number): void;
  /**
   * Waits for the datasync in flight, if any, and throws the first failure any
   * of them had. Call before the final sync: Linux reports a failed writeback
   * once, to the first sync that asks, so the error a background datasync saw
   * would otherwise be lost and the final fsync could succeed.
   */
  settle(): Promise<void>;
}

export function createWriteBehindSync(handle: Pick<FileHandle, "datasync">, everyBytes = defaultSyncEveryBytes): WriteBehindSync {
  let unsynced = 0;
  let running: Promise<void> | undefined;
  let failure: unknown;
  return {
    wrote(bytes) {
      unsynced += bytes;
      // One at a time: a datasync started while another runs would wait for it anyway.
      if (unsynced < everyBytes || running !== undefined || failure !== undefined) return;
      unsynced = 0;
      running = handle.datasync().then(
        () => {
          running = undefined;
        },
        (err: unknown) => {
          running = undefined;
          failure ??= err;
        },
      );
    },
    async settle() {
      await running;
      if (failure !== undefined) throw failure;
    },
  };
}
