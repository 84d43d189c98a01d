// An HTTP body chunk by chunk, as the socket delivered it. A Readable's own
// async iterator reads everything buffered at once, and whenever the consumer
// fell behind (waiting for agent credit, say) that means concatenating the
// waiting chunks into a new buffer: a copy and an allocation per read, on
// every byte of a transfer.
import type { Readable } from "node:stream";

export async function* bodyChunks(body: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    // At most a chunk or two wait here: the socket's own buffer and TCP hold the rest.
    body.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (err: Error) => {
    failure ??= err;
    notify();
  };
  const onClose = () => {
    if (!ended) failure ??= new Error("the request body closed before its end");
    notify();
  };
  body.on("data", onData);
  body.once("end", onEnd);
  body.once("error", onError);
  body.once("close", onClose);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        if (queue.length === 0 && !ended && failure === undefined) body.resume();
        yield chunk;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    body.off("data", onData);
    // A consumer that stopped early wants no more of the body, as with the stream's own iterator.
    if (!ended) body.destroy();
    body.off("end", onEnd);
    body.off("error", onError);
    body.off("close", onClose);
  }
}
