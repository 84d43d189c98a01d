// The Windows registry through PowerShell and .NET's RegistryKey: no provider
// paths (so no wildcards), values read without expanding %VARS%, kinds as
// RegistryValueKind numbers, DWORD/QWORD as strings (a QWORD does not fit a
// JSON number), binary as base64.
import { GuruError } from "../../lib/errors.ts";
import { asArray, runPowerShell } from "./powershell.ts";
import { checkRegistryValue, typeOfKind, unsignedDecimal, valueKindNumbers } from "./registry-values.ts";
import { runTool, type ToolRunner } from "./run-tool.ts";
import type { RegistryValue as Value } from "./types.ts";
import type { RegistryBackend, RegistryListing } from "./types.ts";
import { parseRegistryKey } from "./system-names.ts";

const prelude = `$hives = @{ HKLM = 'LocalMachine'; HKCU = 'CurrentUser'; HKU = 'Users'; HKCR = 'ClassesRoot'; HKCC = 'CurrentConfig' }
$base = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]$hives[$p.hive], [Microsoft.Win32.RegistryView]::Default)
function Open-Key([bool]$write) {
  $k = if ($p.path -eq '') { $base } else { $base.OpenSubKey($p.path, $write) }
  if ($k -eq $null) { throw [System.Management.Automation.ItemNotFoundException]::new('KeyNotFound: ' + $p.key) }
  $k
}
function Describe($k, [string]$n) {
  $kind = [int]$k.GetValueKind($n)
  $v = $k.GetValue($n, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
  $d = switch ($kind) { 3 { [Convert]::ToBase64String([byte[]]$v) } -1 { [Convert]::ToBase64String([byte[]]$v) } 0 { [Convert]::ToBase64String([byte[]]$v) } 7 { ,[string[]]$v } default { [string]$v } }
  [pscustomobject]@{ name = $n; kind = $kind; data = $d }
}`;

const listScript = `${prelude}
$k = Open-Key $false
ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ subkeys = @($k.GetSubKeyNames()); values = @(foreach ($n in $k.GetValueNames()) { Describe $k $n }) })`;

const readScript = `${prelude}
$k = Open-Key $false
$v = if ($k.GetValueNames() -contains $p.name) { Describe $k $p.name } else { $null }
ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ value = $v })`;

const writeScript = `${prelude}
$k = if ($p.path -eq '') { $base } else { $base.CreateSubKey($p.path) }
$d = switch ([int]$p.kind) {
  4 { [BitConverter]::ToInt32([BitConverter]::GetBytes([uint32]$p.data), 0) }
  11 { [BitConverter]::ToInt64([BitConverter]::GetBytes([uint64]$p.data), 0) }
  7 { [string[]]@($p.multi) }
  3 { [Convert]::FromBase64String($p.data) }
  -1 { [Convert]::FromBase64String($p.data) }
  default { [string]$p.data }
}
$k.SetValue($p.name, $d, [Microsoft.Win32.RegistryValueKind]([int]$p.kind))
ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ ok = $true })`;

const deleteScript = `${prelude}
$k = Open-Key $true
$k.DeleteValue($p.name, $true)
ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ ok = $true })`;

interface RawValue {
  name?: string;
  kind?: number;
  data?: string | string[] | null;
}

function fromRaw(raw: RawValue): Value {
  const type = typeOfKind(raw.kind ?? 0);
  const name = raw.name ?? "";
  if (type === "multi_sz") return { name, type, data: "", multiString: asArray(raw.data as string[] | string | null) };
  const text = typeof raw.data === "string" ? raw.data : "";
  if (type === "binary" || type === "none") return { name, type, data: Buffer.from(text, "base64").toString("hex"), multiString: [] };
  if (type === "dword") return { name, type, data: unsignedDecimal(text || "0", 32), multiString: [] };
  if (type === "qword") return { name, type, data: unsignedDecimal(text || "0", 64), multiString: [] };
  return { name, type, data: text, multiString: [] };
}

export function parseListing(key: string, json: unknown): RegistryListing {
  const { subkeys, values } = (json ?? {}) as { subkeys?: string[] | string | null; values?: RawValue[] | RawValue | null };
  return { key, subkeys: asArray(subkeys), values: asArray(values).map(fromRaw) };
}

export function parseRead(json: unknown): Value | undefined {
  const { value } = (json ?? {}) as { value?: RawValue | null };
  return value === null || value === undefined ? undefined : fromRaw(value);
}

/** The script's parameters for a write: the value in the form the script converts from. */
export function writeParams(key: string, value: Value): Record<string, unknown> {
  const k = parseRegistryKey(key);
  const v = checkRegistryValue(value);
  const data = v.type === "binary" || v.type === "none" ? Buffer.from(v.data, "hex").toString("base64") : v.data;
  return { hive: k.hive, path: k.path, key: k.text, name: v.name, kind: valueKindNumbers[v.type], data, multi: v.multiString };
}

export function createWindowsRegistry(options: { powershell?: string; run?: ToolRunner } = {}): RegistryBackend {
  const run = options.run ?? runTool;
  const exe = options.powershell ?? "powershell.exe";
  const keyParams = (key: string) => {
    const k = parseRegistryKey(key);
    return { hive: k.hive, path: k.path, key: k.text };
  };
  return {
    async list(key) {
      const params = keyParams(key);
      return parseListing(params.key, await runPowerShell(run, exe, listScript, params, `registry key ${params.key}`));
    },
    async read(key, name) {
      const params = keyParams(key);
      return parseRead(await runPowerShell(run, exe, readScript, { ...params, name }, `registry value ${params.key}\\${name}`));
    },
    async write(key, value) {
      const params = writeParams(key, value);
      await runPowerShell(run, exe, writeScript, params, `writing ${params.key}\\${value.name}`);
    },
    async delete(key, name) {
      const params = keyParams(key);
      const answer = await runPowerShell(run, exe, deleteScript, { ...params, name }, `deleting ${params.key}\\${name}`);
      if (answer === null) throw new GuruError("internal", "the delete script answered nothing");
    },
  };
}
