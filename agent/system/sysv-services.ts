// SysV init scripts, where systemd does not run. State comes from the
// script's `status` exit code as LSB defines it (0 running, 1 dead with a
// pidfile left, 2 dead with a lock file left, 3 not running, 4 unknown), never
// from its text. Start mode comes from the rc.d links: an S link in runlevels
// 2-5 starts it at boot. Scripts run as argv (`service NAME ACTION` for the
// system's /etc/init.d, the script itself for any other directory).
import { constants } from "node:fs";
import { access, lstat, mkdir, readFile, readdir, rename, rm, stat, symlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { GuruError } from "../../lib/errors.ts";
import { runTool, type ToolRunner } from "./run-tool.ts";
import type { ServiceAction, ServiceBackend, ServiceInfo, ServiceState } from "./types.ts";

export interface SysvOptions {
  /** Where the init scripts are; /etc/init.d on a real system. */
  initDir: string;
  /** Where the rcN.d directories are; default the init dir's parent. */
  rcBaseDir?: string;
  /** `service` for the system's /etc/init.d; unset runs the script directly. */
  serviceCommand?: string;
  /** update-rc.d for the system's /etc; unset manages the rc.d links directly. */
  updateRcCommand?: string;
  run?: ToolRunner;
  scriptTimeoutMs?: number;
}

const bootRunlevels = ["2", "3", "4", "5"];
const haltRunlevels = ["0", "1", "6"];
const notServices = new Set(["README", "rc", "rcS", "skeleton", "functions"]);

export function lsbState(code: number): ServiceState {
  if (code === 0) return "running";
  if (code === 1 || code === 2) return "failed";
  if (code === 3) return "stopped";
  return "unknown";
}

/** The LSB header's descriptions and a literal PIDFILE= path, if the script has them. */
export function parseInitScript(text: string): { shortDescription: string; description: string; pidFile: string } {
  const header = (field: string) => new RegExp(`^#\\s*${field}:[ \\t]*(.*)$`, "mi").exec(text)?.[1]?.trim() ?? "";
  const pid = /^\s*PIDFILE=["']?([^"'\s$`]+)["']?\s*$/im.exec(text)?.[1] ?? "";
  return { shortDescription: header("Short-Description"), description: header("Description"), pidFile: pid };
}

export function createSysvServices(options: SysvOptions): ServiceBackend {
  const run = options.run ?? runTool;
  const rcBase = options.rcBaseDir ?? dirname(options.initDir);
  const timeoutMs = options.scriptTimeoutMs ?? 60_000;

  async function scriptPath(name: string): Promise<string> {
    const path = join(options.initDir, name);
    try {
      const s = await stat(path);
      if (!s.isFile()) throw new Error("not a file");
      await access(path, constants.X_OK);
    } catch {
      throw new GuruError("not_found", `no service ${name} (no executable script ${path})`, { details: { name } });
    }
    return path;
  }

  function invoke(name: string, path: string, action: string) {
    // LC_ALL=C: the text is only for error messages, but keep it readable in logs.
    const env = { ...process.env, LC_ALL: "C" };
    if (options.serviceCommand) return run(options.serviceCommand, [name, action], { timeoutMs, env });
    return run(path, [action], { timeoutMs, env });
  }

  async function linksOf(name: string, runlevels: string[]): Promise<{ dir: string; entry: string }[]> {
    const found: { dir: string; entry: string }[] = [];
    const pattern = new RegExp(`^[SK]\\d\\d${name.replace(/[.+\\]/g, "\\$&")}$`);
    for (const level of runlevels) {
      const dir = join(rcBase, `rc${level}.d`);
      const entries = await readdir(dir).catch(() => [] as string[]);
      for (const entry of entries) if (pattern.test(entry)) found.push({ dir, entry });
    }
    return found;
  }

  async function startMode(name: string): Promise<ServiceInfo["startMode"]> {
    const links = await linksOf(name, bootRunlevels);
    return links.some((l) => l.entry.startsWith("S")) ? "automatic" : "disabled";
  }

  async function get(name: string): Promise<ServiceInfo> {
    const path = await scriptPath(name);
    const text = await readFile(path, "utf8").catch(() => "");
    const header = parseInitScript(text);
    const status = await invoke(name, path, "status");
    const state = lsbState(status.code);
    let pid = 0;
    if (state === "running" && header.pidFile !== "") {
      const n = Number.parseInt((await readFile(header.pidFile, "utf8").catch(() => "")).trim(), 10);
      if (Number.isSafeInteger(n) && n > 0) pid = n;
    }
    return {
      name,
      displayName: header.shortDescription || name,
      state,
      startMode: await startMode(name),
      pid,
      description: header.description || header.shortDescription,
    };
  }

  async function list(): Promise<ServiceInfo[]> {
    const entries = await readdir(options.initDir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      throw new GuruError("failed_precondition", `cannot read the init script directory ${options.initDir} (${err.code})`);
    });
    const names = entries
      .filter(
        (e) => (e.isFile() || e.isSymbolicLink()) && !notServices.has(e.name) && !e.name.startsWith(".") && /^[A-Za-z0-9_][A-Za-z0-9_.@:+-]*$/.test(e.name),
      )
      .map((e) => e.name)
      .sort();
    const services: ServiceInfo[] = [];
    // A few status calls at a time: each is a process.
    for (let i = 0; i < names.length; i += 8) {
      const batch = await Promise.all(names.slice(i, i + 8).map((n) => get(n).catch(() => undefined)));
      for (const s of batch) if (s) services.push(s);
    }
    return services;
  }

  async function setBootLinks(name: string, enable: boolean): Promise<void> {
    if (options.updateRcCommand) {
      const args = enable
        ? [
            [name, "defaults"],
            [name, "enable"],
          ]
        : [[name, "disable"]];
      for (const a of args) {
        const r = await run(options.updateRcCommand, a, { timeoutMs });
        if (r.code !== 0)
          throw new GuruError("failed_precondition", `${options.updateRcCommand} ${a.join(" ")} failed (exit ${r.code}): ${tail(r.stderr || r.stdout)}`);
      }
      return;
    }
    // What update-rc.d does: S links where the service should run at boot,
    // K links where it should be stopped; disabling turns S into K.
    const existing = await linksOf(name, [...bootRunlevels, ...haltRunlevels]);
    if (!enable) {
      for (const l of existing) if (l.entry.startsWith("S")) await rename(join(l.dir, l.entry), join(l.dir, `K${l.entry.slice(1)}`));
      return;
    }
    for (const l of existing) if (bootRunlevels.some((lv) => l.dir.endsWith(`rc${lv}.d`)) && l.entry.startsWith("K")) await rm(join(l.dir, l.entry));
    for (const level of [...bootRunlevels, ...haltRunlevels]) {
      const dir = join(rcBase, `rc${level}.d`);
      await mkdir(dir, { recursive: true });
      const boot = bootRunlevels.includes(level);
      const link = join(dir, `${boot ? "S20" : "K01"}${name}`);
      if (
        await lstat(link).then(
          () => true,
          () => false,
        )
      )
        continue;
      await symlink(relative(dir, join(options.initDir, name)), link);
    }
  }

  async function perform(name: string, action: ServiceAction): Promise<void> {
    const path = await scriptPath(name);
    if (action === "enable" || action === "disable") return setBootLinks(name, action === "enable");
    const r = await invoke(name, path, action);
    if (r.code !== 0) {
      throw new GuruError(
        "failed_precondition",
        `${name} ${action} failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ""}): ${tail(r.stderr || r.stdout) || "no output"}`,
        {
          details: { name, action, exitCode: r.code },
        },
      );
    }
  }

  return { manager: "sysv", list, get, perform };
}

export function tail(text: string, chars = 400): string {
  const t = text.trim();
  return t.length > chars ? `…${t.slice(-chars)}` : t;
}
