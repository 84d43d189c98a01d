// Running a fixed PowerShell script with parameters that never become code.
// The parameters travel as base64 of their JSON inside a single-quoted
// literal (base64 has no quote, so nothing can break out of it), the whole
// script as -EncodedCommand (UTF-16LE base64). Output is JSON from
// ConvertTo-Json: numbers and fixed identifiers, whatever the display language.
// Errors are caught in the script and answered as JSON too, classified by
// their FullyQualifiedErrorId and exception type, not by their (localised) text.
import { GuruError } from "../../lib/errors.ts";
import type { ToolRunner } from "./run-tool.ts";

export interface PowerShellError {
  id: string;
  type: string;
  hresult: number;
  message: string;
}

/** Parameters larger than this would take the command line past Windows' 32,767 characters. */
const maxPowerShellParamBytes = 8 * 1024;

export function powershellArgv(script: string, params: Record<string, unknown>): string[] {
  const json = JSON.stringify(params);
  if (Buffer.byteLength(json) > maxPowerShellParamBytes) throw new GuruError("too_large", `the request's values exceed ${maxPowerShellParamBytes} bytes`);
  const data = Buffer.from(json, "utf8").toString("base64");
  const full = [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    // Without this, Windows PowerShell writes the console's OEM code page (850 on a German system).
    "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8",
    `$p = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('${data}')) | ConvertFrom-Json`,
    "try {",
    script,
    "} catch {",
    "  $e = $_.Exception; while ($e.InnerException -ne $null -and $e -is [System.Management.Automation.MethodInvocationException]) { $e = $e.InnerException }",
    "  ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ error = [pscustomobject]@{ id = [string]$_.FullyQualifiedErrorId; type = $e.GetType().FullName; hresult = $e.HResult; message = $e.Message } })",
    "}",
  ].join("\n");
  return ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", Buffer.from(full, "utf16le").toString("base64")];
}

/** The script a -EncodedCommand argv carries (tests, logs). */
export function decodeEncodedCommand(argv: readonly string[]): string {
  const at = argv.indexOf("-EncodedCommand");
  return Buffer.from(argv[at + 1] ?? "", "base64").toString("utf16le");
}

/** A PowerShell error, by its identifiers, as a GuruError. */
function powershellError(error: PowerShellError, what: string): GuruError {
  const id = `${error.id} ${error.type}`;
  const message = `${what}: ${error.message}`;
  const details = { errorId: error.id, exception: error.type };
  // 0x80070005 E_ACCESSDENIED
  if (/UnauthorizedAccess|SecurityException|CouldNotStartService.*Access|PermissionDenied/i.test(id) || error.hresult === -2147024891)
    return new GuruError("denied", message, { details });
  if (/NoServiceFoundForGivenName|ItemNotFound|PathNotFound|KeyNotFound|ValueNotFound|ObjectNotFound/i.test(id))
    return new GuruError("not_found", message, { details });
  if (/ArgumentException|InvalidArgument|ParameterBinding/i.test(id)) return new GuruError("invalid", message, { details });
  return new GuruError("failed_precondition", message, { details });
}

/** Runs the script and parses its JSON; a caught error comes back as a GuruError. */
export async function runPowerShell(run: ToolRunner, exe: string, script: string, params: Record<string, unknown>, what: string): Promise<unknown> {
  const r = await run(exe, powershellArgv(script, params), { timeoutMs: 120_000 });
  const text = r.stdout.replace(/^\uFEFF/, "").trim();
  if (r.code !== 0 && text === "") throw new GuruError("failed_precondition", `${what}: ${exe} exited with code ${r.code}: ${r.stderr.trim().slice(0, 400)}`);
  if (text === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new GuruError("internal", `${what}: ${exe} did not answer JSON`, { details: { output: text.slice(0, 400) } });
  }
  const error = (parsed as { error?: PowerShellError } | null)?.error;
  if (error !== undefined && error !== null) throw powershellError(error, what);
  return parsed;
}

/** ConvertTo-Json writes one object for a single result and null for none. */
export function asArray<T>(value: T | T[] | null | undefined): T[] {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
