// A real HAProxy on loopback in front of test server nodes, configured from the
// shipped deploy/haproxy.cfg: only the bind address, the `server` lines and the
// health-check pace differ, so a cluster test through it proves the documented
// layout (WebSocket upgrade for /agent, /readyz checks, leastconn) works.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { canConnect, freePort } from "./free-port.ts";

const shippedConfig = fileURLToPath(new URL("../../deploy/haproxy.cfg", import.meta.url));
const haproxyBin = process.env.HAPROXY_BIN || "/usr/sbin/haproxy";

/** Why HAProxy cannot run here, or undefined when it can. */
export function haproxyMissing(): string | undefined {
  return existsSync(haproxyBin) ? undefined : `${haproxyBin} not found (install Debian's haproxy)`;
}

export interface TestHaproxy {
  url: string;
  /** Everything HAProxy logged (requests, and servers going DOWN and UP). */
  output(): string;
  /** A position in the log, for waitForLog's `since`. */
  mark(): number;
  /** Resolves once the log (after `since`) matches pattern (for example `Server guru_nodes/node3 is DOWN`). */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; since?: number }): Promise<void>;
  close(): Promise<void>;
}

export interface HaproxyBackend {
  name: string;
  url: string;
}

/**
 * deploy/haproxy.cfg with the test's differences: bind on a loopback port, the
 * given servers instead of the example ones, checks every `checkInterMs`
 * (instead of 2 s, so a dead node leaves the rotation within a test's time),
 * a 1 s slow start, and a global maxconn a test machine's file-descriptor
 * limit allows (HAProxy wants about two descriptors per connection and stops
 * at start-up when it cannot raise its limit that far). Throws if a line it replaces is no longer there, so the
 * shipped file and this derivation cannot drift apart silently.
 */
function testHaproxyConfig(shipped: string, port: number, backends: HaproxyBackend[], checkInterMs: number): string {
  let maxconnReplaced = false;
  let bindReplaced = false;
  let checkReplaced = false;
  let serversPlaced = false;
  const out: string[] = [];
  for (const line of shipped.split("\n")) {
    if (/^\s*maxconn\s+\d+\s*$/.test(line) && !maxconnReplaced) {
      out.push("    maxconn 400");
      maxconnReplaced = true;
    } else if (/^\s*bind\s+:\d+\s*$/.test(line)) {
      out.push(`    bind 127.0.0.1:${port}`);
      bindReplaced = true;
    } else if (/^\s*default-server\s/.test(line)) {
      const paced = line.replace(/\binter \S+/, `inter ${checkInterMs}ms`).replace(/\bslowstart \S+/, "slowstart 1s");
      checkReplaced = paced !== line;
      out.push(paced);
    } else if (/^\s*server\s/.test(line)) {
      if (!serversPlaced) for (const b of backends) out.push(`    server ${b.name} ${new URL(b.url).host}`);
      serversPlaced = true;
    } else {
      out.push(line);
    }
  }
  if (!maxconnReplaced || !bindReplaced || !checkReplaced || !serversPlaced)
    throw new Error("deploy/haproxy.cfg no longer has the `maxconn`, `bind :PORT`, `default-server ... inter` and `server` lines the test replaces");
  return out.join("\n");
}

export async function startHaproxy(options: { backends: HaproxyBackend[]; checkInterMs?: number }): Promise<TestHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), "guru-haproxy-"));
  const port = await freePort();
  const configPath = join(dir, "haproxy.cfg");
  await writeFile(configPath, testHaproxyConfig(await readFile(shippedConfig, "utf8"), port, options.backends, options.checkInterMs ?? 200));
  // -db: foreground, no daemon, so the child is HAProxy itself and the log goes to our pipe.
  const child: ChildProcess = spawn(haproxyBin, ["-db", "-f", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let dropped = 0;
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    output += d.toString();
    // Request lines pile up in long tests: keep the recent part only.
    if (output.length > 4_000_000) {
      dropped += output.length - 2_000_000;
      output = output.slice(-2_000_000);
    }
    for (const l of listeners) l();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      throw new Error(`haproxy did not listen on ${port}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  return {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    mark: () => dropped + output.length,
    waitForLog(pattern, { timeoutMs = 10_000, since = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(output.slice(Math.max(0, since - dropped)))) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`haproxy did not log ${pattern} within ${timeoutMs} ms:\n${output.slice(-4000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async close() {
      // SIGUSR1 is HAProxy's soft stop: it stops listening, then exits when its connections end; SIGTERM ends them at once.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
