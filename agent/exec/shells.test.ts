import { describe, expect, it } from "vitest";
import { defaultShell, resolveShellPaths, shellInvocation, type ShellPaths } from "./shells.ts";

const posixPaths: ShellPaths = { sh: "/bin/sh", bash: "/usr/bin/bash", pwsh: "/usr/bin/pwsh" };
const windowsPaths: ShellPaths = { cmd: "C:\\Windows\\System32\\cmd.exe", powershell: "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" };

describe("shellInvocation", () => {
  it("defaults to sh on POSIX and Windows PowerShell on win32", () => {
    expect(defaultShell("linux")).toBe("sh");
    expect(defaultShell("darwin")).toBe("sh");
    expect(defaultShell("win32")).toBe("powershell");
  });

  it("passes the command as one argv element, to the shell's absolute path", () => {
    const command = `echo "a b"; rm -rf '$HOME'`;
    expect(shellInvocation("bash", command, "linux", posixPaths)).toEqual({ file: "/usr/bin/bash", args: ["-c", command], windowsVerbatimArguments: false });
    expect(shellInvocation("sh", command, "linux", posixPaths)).toEqual({ file: "/bin/sh", args: ["-c", command], windowsVerbatimArguments: false });
    expect(shellInvocation("pwsh", command, "linux", posixPaths)).toEqual({
      file: "/usr/bin/pwsh",
      args: ["-NoProfile", "-NonInteractive", "-Command", command],
      windowsVerbatimArguments: false,
    });
    expect(shellInvocation("powershell", command, "win32", windowsPaths)?.file).toBe(windowsPaths.powershell);
  });

  it("says a shell it has no path for is not there", () => {
    expect(shellInvocation("cmd", "dir", "linux", posixPaths)).toBeUndefined();
    expect(shellInvocation("powershell", "dir", "linux", posixPaths)).toBeUndefined();
  });

  it("hands cmd.exe its line verbatim, quoted for /s", () => {
    expect(shellInvocation("cmd", "dir & echo x", "win32", windowsPaths)).toEqual({
      file: windowsPaths.cmd,
      args: ["/d", "/s", "/c", `"dir & echo x"`],
      windowsVerbatimArguments: true,
    });
  });
});

describe("resolveShellPaths", () => {
  it("finds POSIX shells in fixed system directories, never through PATH", () => {
    const seen: string[] = [];
    const exists = (p: string) => {
      seen.push(p);
      return p === "/usr/bin/bash" || p === "/bin/sh";
    };
    const paths = resolveShellPaths("linux", { PATH: "/tmp/evil:/home/x/bin" }, exists);
    expect(paths).toEqual({ sh: "/bin/sh", bash: "/usr/bin/bash" });
    expect(seen.some((p) => p.startsWith("/tmp") || p.startsWith("/home"))).toBe(false);
  });

  it("uses System32 under SystemRoot on Windows", () => {
    const paths = resolveShellPaths("win32", { SystemRoot: "D:\\Win", PATH: "C:\\evil" }, (p) => !p.includes("PowerShell\\7"));
    expect(paths.cmd).toBe("D:\\Win\\System32\\cmd.exe");
    expect(paths.powershell).toBe("D:\\Win\\System32\\WindowsPowerShell\\v1.0\\powershell.exe");
    expect(paths.pwsh).toBeUndefined();
  });

  it("finds this machine's /bin/sh", () => {
    if (process.platform === "win32") return;
    expect(resolveShellPaths().sh).toMatch(/^\/.*\/sh$/);
  });
});
