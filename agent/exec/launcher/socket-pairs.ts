// Connected pairs of Unix stream sockets (what Node itself uses for a child's
// 'pipe' stdio), made through a listener in a private directory: one end goes
// to the process launcher as a command's stdout or stderr, the agent reads
// the other. Pairs are made one at a time, so the connection the listener
// accepts next is always the one being made: nothing is written to match
// them, and no byte of a command's output passes through anything but the
// socket itself.
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SocketPair {
  /** The end to hand on (a command writes to it). */
  writeEnd: net.Socket;
  /** The end the agent reads, not reading yet: its output and its end wait for resume(). */
  readEnd: net.Socket;
}

export interface SocketPairs {
  create(): Promise<SocketPair>;
  close(): Promise<void>;
}

export async function createSocketPairs(): Promise<SocketPairs> {
  // mkdtemp makes the directory 0700: no other user can connect.
  const dir = await mkdtemp(join(tmpdir(), "guru-launcher-"));
  const path = join(dir, "stdio.sock");
  let accepting: ((socket: net.Socket) => void) | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  // pauseOnConnect: the socket does not read at all (so it cannot see its
  // end, which a merely paused stream still reports when nothing came
  // before it) until its reader calls resume(); a 'data' listener alone
  // does not start it.
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const take = accepting;
    accepting = undefined;
    if (take === undefined)
      socket.destroy(); // not ours
    else take(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  server.unref();

  function makePair(): Promise<SocketPair> {
    return new Promise((resolve, reject) => {
      const writeEnd = net.connect(path);
      let readEnd: net.Socket | undefined;
      let connected = false;
      const done = () => {
        if (readEnd === undefined || !connected) return;
        writeEnd.off("error", onError);
        resolve({ writeEnd, readEnd });
      };
      const onError = (err: Error) => {
        accepting = undefined;
        readEnd?.destroy();
        writeEnd.destroy();
        reject(err);
      };
      accepting = (socket) => {
        readEnd = socket;
        done();
      };
      writeEnd.once("error", onError);
      writeEnd.once("connect", () => {
        connected = true;
        done();
      });
    });
  }

  return {
    create() {
      const pair = queue.then(makePair);
      queue = pair.catch(() => undefined);
      return pair;
    },
    async close() {
      // Stops accepting; pairs already made stay usable (their commands end on their own).
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
