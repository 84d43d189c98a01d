// How each supported shell is started. The command text always travels as ONE
// argv element and the process is spawned without `shell: true`: nothing we
// build is ever interpolated into a shell line.

export type ShellName = "bash" | "sh" | "powershell" | "pwsh" | "cmd";

export const shellNames: readonly ShellName[] = ["bash", "sh", "powershell", "pwsh", "cmd"];

export interface ShellInvocation {
  file: string;
  args: string[];
  /** cmd.exe does its own parsing of the raw command line (see below). */
  windowsVerbatimArguments: boolean;
}

/** sh on POSIX, Windows PowerShell on win32 (always present there, unlike pwsh). */
export function defaultShell(platform: NodeJS.Platform): ShellName {
  return platform === "win32" ? "powershell" : "sh";
}

export function shellInvocation(shell: ShellName, command: string, platform: NodeJS.Platform): ShellInvocation {
  const win = platform === "win32";
  switch (shell) {
    case "bash":
      return { file: "bash", args: ["-c", command], windowsVerbatimArguments: false };
    case "sh":
      return { file: "sh", args: ["-c", command], windowsVerbatimArguments: false };
    case "powershell":
    case "pwsh":
      // -NonInteractive: a prompt (Read-Host, a confirmation) fails at once
      // instead of waiting on a stdin nobody writes to.
      return {
        file: win ? `${shell}.exe` : shell,
        args: ["-NoProfile", "-NonInteractive", "-Command", command],
        windowsVerbatimArguments: false,
      };
    case "cmd":
      // cmd.exe does not follow the MSVCRT quoting rules libuv applies to
      // argv, so the line is passed verbatim the way Node's own `shell: true`
      // does: /s strips the outer quotes and keeps the rest as written; /d
      // skips AutoRun commands from the registry.
      return { file: win ? "cmd.exe" : "cmd", args: ["/d", "/s", "/c", `"${command}"`], windowsVerbatimArguments: true };
  }
}
