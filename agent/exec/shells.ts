// How each supported shell is started. The command text always travels as ONE
// argv element and the process is spawned without `shell: true`: nothing we
// build is ever interpolated into a shell line.
//
// Shells start by absolute path, found once when the agent starts in fixed
// system directories (never through PATH: a PATH a caller could influence
// would choose the program that runs every command).
import { accessSync, constants } from "node:fs";
import { posix, win32 } from "node:path";
import { shellNames, type ShellName } from "../../lib/wire/shells.ts";

export { shellNames, type ShellName };

/** The absolute path of each shell this agent has; a missing one is not installed. */
export type ShellPaths = Partial<Record<ShellName, string>>;

export interface ShellInvocation {
  file: string;
  args: string[];
  /** cmd.exe does its own parsing of the raw command line (see below). */
  windowsVerbatimArguments: boolean;
}

/** Where POSIX shells are looked for, in order. */
const posixShellDirs = ["/bin", "/usr/bin", "/usr/local/bin", "/opt/homebrew/bin", "/opt/microsoft/powershell/7", "/snap/bin"];

/** sh on POSIX, Windows PowerShell on win32 (always present there, unlike pwsh). */
export function defaultShell(platform: NodeJS.Platform): ShellName {
  return platform === "win32" ? "powershell" : "sh";
}

function executable(path: string, platform: NodeJS.Platform): boolean {
  try {
    accessSync(path, platform === "win32" ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the shells' absolute paths. Windows: System32 under SystemRoot (and
 * PowerShell 7 under Program Files), from the environment the agent was
 * started with; POSIX: the first executable in the fixed directories.
 */
export function resolveShellPaths(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, exists = executable): ShellPaths {
  const paths: ShellPaths = {};
  if (platform === "win32") {
    const root = env.SystemRoot ?? env.SYSTEMROOT ?? env.windir ?? "C:\\Windows";
    const programFiles = env.ProgramFiles ?? env.PROGRAMFILES ?? "C:\\Program Files";
    const candidates: Record<ShellName, string[]> = {
      cmd: [win32.join(root, "System32", "cmd.exe")],
      powershell: [win32.join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe")],
      pwsh: [win32.join(programFiles, "PowerShell", "7", "pwsh.exe")],
      bash: [win32.join(root, "System32", "bash.exe")],
      sh: [],
    };
    for (const shell of shellNames) {
      const found = candidates[shell].find((p) => exists(p, platform));
      if (found !== undefined) paths[shell] = found;
    }
    return paths;
  }
  const names: Record<ShellName, string | undefined> = { sh: "sh", bash: "bash", pwsh: "pwsh", powershell: "powershell", cmd: undefined };
  for (const shell of shellNames) {
    const name = names[shell];
    if (name === undefined) continue;
    const found = posixShellDirs.map((dir) => posix.join(dir, name)).find((p) => exists(p, platform));
    if (found !== undefined) paths[shell] = found;
  }
  return paths;
}

/** undefined: the shell is not installed on this agent. */
export function shellInvocation(shell: ShellName, command: string, platform: NodeJS.Platform, paths: ShellPaths): ShellInvocation | undefined {
  const file = paths[shell];
  if (file === undefined) return undefined;
  switch (shell) {
    case "bash":
    case "sh":
      return { file, args: ["-c", command], windowsVerbatimArguments: false };
    case "powershell":
    case "pwsh":
      // -NonInteractive: a prompt (Read-Host, a confirmation) fails at once
      // instead of waiting on a stdin nobody writes to.
      return { file, args: ["-NoProfile", "-NonInteractive", "-Command", command], windowsVerbatimArguments: false };
    case "cmd":
      // cmd.exe does not follow the MSVCRT quoting rules libuv applies to
      // argv, so the line is passed verbatim the way Node's own `shell: true`
      // does: /s strips the outer quotes and keeps the rest as written; /d
      // skips AutoRun commands from the registry.
      return { file, args: ["/d", "/s", "/c", `"${command}"`], windowsVerbatimArguments: platform === "win32" };
  }
}
