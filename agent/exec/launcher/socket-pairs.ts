// Connected pairs of Unix stream sockets (what Node itself uses for a child's
// 'pipe' stdio), made through a listener in a private directory: one end goes
// to the process launcher as a command's stdout or stderr, the agent reads
// the other. Pairs are made one at a time, so the connection the listener
// accepts next is always the one being made: nothing is written to match
// them, and no byte of a command's output passes through anything but the
// socket itself.
import { mkdtemp, readdir, rm } from "node:fs/promises";
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

const dirPrefix = "guru-launcher-";

export async function createSocketPairs(): Promise<SocketPairs> {
  await removeStaleSocketDirs(tmpdir());
  // mkdtemp makes the directory 0700: no other user can connect. The owner's
  // pid in the name tells a later agent whether the directory is still in use.
  const dir = await mkdtemp(join(tmpdir(), `${dirPrefix}${process.pid}-`));
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

/**
 * Removes the socket directories of agents that died without closing (a
 * SIGKILL, a crash), so a host whose agent restarts does not collect them.
 * Only directories whose owner process is gone: a live owner's listener is
 * never touched (not even probed, since its next accepted connection is taken
 * as the pair it is making). A pid reused since keeps its directory until
 * that process is gone too; another user's directories fail to go and stay.
 */
export async function removeStaleSocketDirs(parent: string): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const owner = ownerPid(name);
      if (owner === undefined || isAlive(owner)) return;
      await rm(join(parent, name), { recursive: true, force: true }).catch(() => undefined);
    }),
  );
}

function ownerPid(name: string): number | undefined {
  const match = name.startsWith(dirPrefix) ? /^(\d+)-/.exec(name.slice(dirPrefix.length)) : null;
  return match ? Number(match[1]) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
