// The priority sender: two queues on one socket. Urgent frames (control,
// credits, cancels, everything on interactive channels) go to the socket at
// once. Bulk frames (data of file transfers) go only while the socket holds
// less than socketHighWaterBytes, so an urgent frame never waits behind more
// than about that much bulk data. Sending resumes from the socket's write
// callbacks; no timer polls.
import type { FrameSocket } from "./frame-socket.ts";

export interface FrameSender {
  sendUrgent(bytes: Uint8Array): void;
  /**
   * `onWritten` runs once the frame left our queue for the socket (the
   * channel's queued bytes drop); `onSent` once the socket wrote it out
   * without error (not after a failure, nor if the frame never reached it).
   */
  sendBulk(bytes: Uint8Array, onWritten?: () => void, onSent?: () => void): void;
  /** Bytes waiting in the bulk queue, not yet given to the socket. */
  readonly bulkQueuedBytes: number;
  /** Drops the bulk queue; later sends are ignored. */
  stop(): void;
}

interface BulkItem {
  bytes: Uint8Array;
  onWritten: (() => void) | undefined;
  onSent: (() => void) | undefined;
}

export function createFrameSender(deps: {
  socket: FrameSocket;
  socketHighWaterBytes: number;
  /** A write failed: the socket is going away. Called once. */
  onSendError: (err: Error) => void;
}): FrameSender {
  const { socket, socketHighWaterBytes } = deps;
  let queue: BulkItem[] = [];
  let head = 0;
  let queuedBytes = 0;
  let stopped = false;
  let pumping = false;
  let failed = false;

  const onDone = (err?: Error): void => {
    if (err) {
      if (!failed) {
        failed = true;
        deps.onSendError(err);
      }
      return;
    }
    if (head < queue.length) pump();
  };

  function pump(): void {
    if (pumping) return;
    pumping = true;
    try {
      while (!stopped && head < queue.length && socket.bufferedAmount < socketHighWaterBytes) {
        const item = queue[head];
        queue[head] = undefined as unknown as BulkItem;
        head++;
        queuedBytes -= item.bytes.byteLength;
        const onSent = item.onSent;
        socket.send(
          item.bytes,
          onSent === undefined
            ? onDone
            : (err) => {
                if (!err) onSent();
                onDone(err);
              },
        );
        item.onWritten?.();
      }
      // Compact now and then so the array does not grow without bound.
      if (head > 1024 || head === queue.length) {
        queue = queue.slice(head);
        head = 0;
      }
    } finally {
      pumping = false;
    }
  }

  return {
    sendUrgent(bytes) {
      if (stopped) return;
      socket.send(bytes, onDone);
    },
    sendBulk(bytes, onWritten, onSent) {
      if (stopped) return;
      queue.push({ bytes, onWritten, onSent });
      queuedBytes += bytes.byteLength;
      pump();
    },
    get bulkQueuedBytes() {
      return queuedBytes;
    },
    stop() {
      stopped = true;
      queue = [];
      head = 0;
      queuedBytes = 0;
    },
  };
}
