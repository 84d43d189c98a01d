import { describe, expect, it } from "vitest";
import { defaultShell, shellInvocation } from "./shells.ts";

describe("shellInvocation", () => {
  it("defaults to sh on POSIX and Windows PowerShell on win32", () => {
    expect(defaultShell("linux")).toBe("sh");
    expect(defaultShell("darwin")).toBe("sh");
    expect(defaultShell("win32")).toBe("powershell");
  });

  it("passes the command as one argv element", () => {
    const command = `echo "a b"; rm -rf '$HOME'`;
    expect(shellInvocation("bash", command, "linux")).toEqual({ file: "bash", args: ["-c", command], windowsVerbatimArguments: false });
    expect(shellInvocation("sh", command, "linux")).toEqual({ file: "sh", args: ["-c", command], windowsVerbatimArguments: false });
    expect(shellInvocation("pwsh", command, "linux")).toEqual({
      file: "pwsh",
      args: ["-NoProfile", "-NonInteractive", "-Command", command],
      windowsVerbatimArguments: false,
    });
    expect(shellInvocation("powershell", command, "win32").file).toBe("powershell.exe");
  });

  it("hands cmd.exe its line verbatim, quoted for /s", () => {
    expect(shellInvocation("cmd", "dir & echo x", "win32")).toEqual({
      file: "cmd.exe",
      args: ["/d", "/s", "/c", `"dir & echo x"`],
      windowsVerbatimArguments: true,
    });
  });
});
