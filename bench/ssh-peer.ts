// OpenSSH as the bench's peer: `sshd` started here on a loopback port with a
// throwaway host key and user key in a temp dir, and helpers to drive `ssh`
// and `scp` against it the way a technician would (spawned, timed from spawn
// to exit). Nothing outside the temp dir is touched; /run/sshd is created when
// missing because sshd's privilege separation needs it.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo } from "node:net";
import { join } from "node:path";

const sshdCandidates = ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"];

export const sshdInstallHint =
  "OpenSSH's server is not installed: `apt-get install -y openssh-server` (Debian/Ubuntu) or your system's openssh package, then run `npm run bench -- ssh` again";

/** Where `sshd` is, or undefined; `ssh`, `scp` and `ssh-keygen` must be on PATH too. */
export function findSshd(): string | undefined {
  const sshd = sshdCandidates.find((p) => existsSync(p));
  if (sshd === undefined) return undefined;
  for (const tool of ["ssh", "scp", "ssh-keygen"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      return undefined;
    }
  }
  return sshd;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

export interface SshPeer {
  sshd: ChildProcess;
  /** Options for a fresh connection (full handshake). */
  args: string[];
  /** Options that go through the ControlMaster opened by openMaster(). */
  muxArgs: string[];
  target: string;
  openMaster(): Promise<void>;
  close(): Promise<void>;
}

export async function startSshd(sshdPath: string, dir: string): Promise<SshPeer> {
  const home = join(dir, "ssh");
  await mkdir(home, { recursive: true, mode: 0o700 });
  const hostKey = join(home, "host_ed25519");
  const userKey = join(home, "user_ed25519");
  for (const key of [hostKey, userKey]) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key], { stdio: "ignore" });
  await writeFile(join(home, "authorized_keys"), readFileSync(`${userKey}.pub`));
  await chmod(join(home, "authorized_keys"), 0o600);
  // An empty home for the session: bash run by sshd reads ~/.bashrc, and we
  // want the login shell to read no start-up files, as the agent's /bin/sh does.
  const sessionHome = join(home, "home");
  await mkdir(sessionHome, { recursive: true });
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const port = await freePort();
  const user = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
  const config = join(home, "sshd_config");
  await writeFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(home, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(home, "authorized_keys")}`,
      `AllowUsers ${user}`,
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "UseDNS no",
      "PrintMotd no",
      "PrintLastLog no",
      "MaxSessions 100",
      "MaxStartups 100:30:200",
      `SetEnv HOME=${sessionHome} ENV=/dev/null BASH_ENV=/dev/null`,
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const sshd = spawn(sshdPath, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  sshd.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  // Ready when the port accepts connections.
  for (let i = 0; ; i++) {
    if (sshd.exitCode !== null) throw new Error(`sshd exited with ${sshd.exitCode}: ${log}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) break;
    if (i > 400) throw new Error(`sshd did not listen on ${port}: ${log}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const args = [
    "-p",
    String(port),
    "-i",
    userKey,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    `UserKnownHostsFile=${join(home, "known_hosts")}`,
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "-F",
    "/dev/null",
  ];
  const controlPath = join(home, "ctl");
  const muxArgs = args.map((a) => (a === "ControlPath=none" ? `ControlPath=${controlPath}` : a));
  const target = `${user}@127.0.0.1`;
  let master: ChildProcess | undefined;
  return {
    sshd,
    args,
    muxArgs,
    target,
    async openMaster() {
      master = spawn(
        "ssh",
        [...args.map((a) => (a === "ControlMaster=no" ? "ControlMaster=yes" : a === "ControlPath=none" ? `ControlPath=${controlPath}` : a)), "-N", target],
        { stdio: "ignore" },
      );
      for (let i = 0; !existsSync(controlPath); i++) {
        if (master.exitCode !== null || i > 400) throw new Error("ssh ControlMaster did not start");
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      for (const p of [master, sshd]) {
        if (p === undefined || p.exitCode !== null || p.signalCode !== null) continue;
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/** Waits (up to `timeoutMs`) until a process has no children left: sshd's per-connection processes outlive the client by a moment. */
export async function childrenGone(pid: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim() !== "") await new Promise((r) => setTimeout(r, 10));
}

/** Linux clock ticks per second for /proc/…/stat (100 on every Linux we run on). */
const ticksPerSecond = 100;

/**
 * CPU seconds of a process: its own user and system time, plus `withChildren`
 * the time of children it has waited for (sshd's per-connection processes,
 * scp's ssh).
 */
export function cpuSecondsOf(pid: number, withChildren = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const own = Number(fields[11]) + Number(fields[12]);
  const children = withChildren ? Number(fields[13]) + Number(fields[14]) : 0;
  return (own + children) / ticksPerSecond;
}

/**
 * Seconds a process's main thread ran and waited for a CPU while runnable
 * (/proc/…/schedstat). On a busy machine the wait is where latency goes that
 * no code path explains.
 */
export function schedSecondsOf(pid: number): { ran: number; waited: number } {
  try {
    const [ran, waited] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ").map(Number);
    return { ran: ran / 1e9, waited: waited / 1e9 };
  } catch {
    return { ran: 0, waited: 0 };
  }
}

/** A process and everything below it (sshd's per-connection processes), as they are now. */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Gone already.
  }
  return [pid, ...children.flatMap(processTree)];
}
