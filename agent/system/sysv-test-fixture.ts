// A real SysV init script in a temp directory, for tests: it starts a real
// background process with a pidfile, stops it, and answers status by exit
// code as LSB says (0 running, 1 dead with a pidfile left, 3 not running).
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SysvFixture {
  root: string;
  initDir: string;
  pidFile: string;
  /** The pid in the pidfile, or undefined. */
  pid(): Promise<number | undefined>;
  /** Stops whatever the script started (cleanup). */
  cleanup(): Promise<void>;
}

function initScript(name: string, pidFile: string): string {
  return `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ${name}
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: GuruTunnel test daemon
# Description:       A sleeping background process that the service tests start and stop.
### END INIT INFO
PIDFILE=${pidFile}
# A zombie is not running: where PID 1 does not reap orphans (some
# containers), kill -0 would still find the dead daemon.
running() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
case "$1" in
  start)
    running && exit 0
    sleep 3600 >/dev/null 2>&1 </dev/null &
    echo $! > "$PIDFILE"
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null; rm -f "$PIDFILE"; fi
    ;;
  restart)
    "$0" stop && "$0" start
    ;;
  status)
    running && exit 0
    [ -f "$PIDFILE" ] && exit 1
    exit 3
    ;;
  *)
    echo "Usage: $0 {start|stop|restart|status}" >&2
    exit 2
    ;;
esac
exit 0
`;
}

export async function createSysvFixture(name = "guru-demo"): Promise<SysvFixture> {
  const root = await mkdtemp(join(tmpdir(), "guru-sysv-"));
  const initDir = join(root, "init.d");
  await mkdir(initDir);
  await mkdir(join(root, "run"));
  const pidFile = join(root, "run", `${name}.pid`);
  const script = join(initDir, name);
  await writeFile(script, initScript(name, pidFile));
  await chmod(script, 0o755);
  // Not a service: the directory also holds a README, as /etc/init.d does.
  await writeFile(join(initDir, "README"), "init scripts\n");
  const pid = async () => {
    const n = Number.parseInt(await readFile(pidFile, "utf8").catch(() => ""), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  };
  return {
    root,
    initDir,
    pidFile,
    pid,
    async cleanup() {
      const p = await pid();
      if (p !== undefined) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Alive and not a zombie (an orphan's zombie stays where PID 1 does not reap). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}
