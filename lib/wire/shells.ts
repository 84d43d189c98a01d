// The shells a command may ask for, as names: the one list the server, the
// agent, the CLI and `guru mcp` check against. No generated code here, so the
// server's domain can use it; lib/wire/exec-enums.ts maps it to the enums.

export const shellNames = ["bash", "sh", "powershell", "pwsh", "cmd"] as const;
export type ShellName = (typeof shellNames)[number];

export function isShellName(value: unknown): value is ShellName {
  return typeof value === "string" && (shellNames as readonly string[]).includes(value);
}

export type ExitReasonName = "exited" | "timed_out" | "canceled" | "killed";
export type OutputStreamName = "stdout" | "stderr";
