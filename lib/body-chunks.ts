// An HTTP body chunk by chunk, as the socket delivered it, to a handler that
// may ask for a wait. A transfer is about 16,000 socket reads per GiB: a
// plain 'data' handler costs less per read than an async iterator (a promise,
// a pause and a resume of the socket each), and a Readable's own iterator also
// concatenates whatever waited while the consumer was behind: a copy and an
// allocation per read. The body pauses only while a returned promise is
// pending.
import type { Readable } from "node:stream";

/**
 * Hands each chunk of `body` to `onData` in order, never concatenated. Resolves
 * at the body's end; rejects with the body's error, when it closes before its
 * end, or with what `onData` threw or rejected with (the body is then
 * destroyed: nobody wants the rest).
 */
export function consumeBody(body: Readable, onData: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let ended = false;
    /** The handler's wait for the latest chunk: the body's end may come before it is over. */
    let pending: Promise<void> | undefined;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      if (!ended) body.destroy();
      reject(err);
    };
    body.on("data", (chunk: Buffer) => {
      if (settled) return;
      try {
        const waiting = onData(chunk);
        if (waiting === undefined) return;
        body.pause();
        pending = waiting.then(() => {
          if (!settled) body.resume();
        });
        pending.catch(fail);
      } catch (err) {
        fail(err);
      }
    });
    body.once("end", () => {
      ended = true;
      // A Readable ends once its last chunk is handed over, even while paused for that chunk's wait.
      void (pending ?? Promise.resolve()).then(() => {
        if (settled) return;
        settled = true;
        resolve();
      }, fail);
    });
    body.once("error", fail);
    body.once("close", () => {
      if (!ended) fail(new Error("the body closed before its end"));
    });
  });
}
