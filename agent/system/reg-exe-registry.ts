// The registry through reg.exe, for Windows systems without PowerShell
// (Server Core images stripped of it, Windows PE). Its output is text:
// value lines are four spaces, name, four spaces, REG_type, four spaces,
// data. The type names are fixed; only the default value's name is
// translated ("(Default)", "(Standard)", ...), so the agent reads the default
// value with /ve and never matches that name.
import { GuruError } from "../../lib/errors.ts";
import { checkRegistryValue } from "./registry-values.ts";
import { runTool, type ToolRunner } from "./run-tool.ts";
import type { RegistryBackend, RegistryListing, RegistryValue, RegistryValueType } from "./types.ts";
import { parseRegistryKey } from "./system-names.ts";

const regTypes: Record<string, RegistryValueType> = {
  REG_SZ: "sz",
  REG_EXPAND_SZ: "expand_sz",
  REG_MULTI_SZ: "multi_sz",
  REG_DWORD: "dword",
  REG_QWORD: "qword",
  REG_BINARY: "binary",
  REG_NONE: "none",
};
const typeNames = Object.fromEntries(Object.entries(regTypes).map(([k, v]) => [v, k])) as Record<RegistryValueType, string>;
const longHives: Record<string, string> = {
  HKLM: "HKEY_LOCAL_MACHINE",
  HKCU: "HKEY_CURRENT_USER",
  HKU: "HKEY_USERS",
  HKCR: "HKEY_CLASSES_ROOT",
  HKCC: "HKEY_CURRENT_CONFIG",
};

function toValue(name: string, regType: string, raw: string): RegistryValue {
  const type = regTypes[regType] ?? "none";
  if (type === "multi_sz")
    return { name, type, data: "", multiString: raw === "" ? [] : raw.split("\\0").filter((s, i, a) => !(s === "" && i === a.length - 1)) };
  if (type === "dword" || type === "qword") return { name, type, data: BigInt(raw || "0").toString(10), multiString: [] };
  if (type === "binary" || type === "none") return { name, type, data: raw.toLowerCase(), multiString: [] };
  return { name, type, data: raw, multiString: [] };
}

/**
 * `reg query KEY` output: the key's own block of values, then each subkey
 * as a line of its own. `defaultName` is the translated name of the default
 * value when the query was /ve (so any name in that line is the default).
 */
export function parseRegQuery(text: string, key: string, options: { defaultValueQuery?: boolean } = {}): RegistryListing {
  const longKey = `${longHives[parseRegistryKey(key).hive]}${parseRegistryKey(key).path ? `\\${parseRegistryKey(key).path}` : ""}`.toLowerCase();
  const subkeys: string[] = [];
  const values: RegistryValue[] = [];
  let sawValue = false;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    const m = /^ {4}(.*?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/.exec(line);
    if (m) {
      // The default value is listed first under a translated name in
      // parentheses ("(Default)", "(Standard)"), with translated
      // parenthesised data when it is not set ("(value not set)").
      const isDefault = options.defaultValueQuery === true || (values.length === 0 && /^\(.+\)$/.test(m[1]) && !sawValue);
      sawValue = true;
      if (isDefault && m[2] === "REG_SZ" && /^\(.+\)$/.test(m[3] ?? "")) continue;
      values.push(toValue(isDefault ? "" : m[1], m[2], m[3] ?? ""));
      continue;
    }
    if (line.startsWith("HKEY_") && line.toLowerCase().startsWith(`${longKey}\\`)) subkeys.push(line.slice(longKey.length + 1));
  }
  return { key: parseRegistryKey(key).text, subkeys, values };
}

export function regQueryArgv(key: string, valueName?: string): string[] {
  const k = parseRegistryKey(key).text;
  if (valueName === undefined) return ["query", k];
  return valueName === "" ? ["query", k, "/ve"] : ["query", k, "/v", valueName];
}

export function regAddArgv(key: string, value: RegistryValue): string[] {
  const v = checkRegistryValue(value);
  const data = v.type === "multi_sz" ? v.multiString.join("\\0") : v.type === "binary" || v.type === "none" ? v.data : v.data;
  const name = v.name === "" ? ["/ve"] : ["/v", v.name];
  return ["add", parseRegistryKey(key).text, ...name, "/t", typeNames[v.type], "/d", data, "/f"];
}

export function regDeleteArgv(key: string, valueName: string): string[] {
  return ["delete", parseRegistryKey(key).text, ...(valueName === "" ? ["/ve"] : ["/v", valueName]), "/f"];
}

export function createRegExeRegistry(options: { reg?: string; run?: ToolRunner } = {}): RegistryBackend {
  const run = options.run ?? runTool;
  const reg = options.reg ?? "reg.exe";
  // reg.exe exits 1 both for "not found" and for "access denied"; its text is translated.
  async function call(args: string[], what: string) {
    const r = await run(reg, args, { timeoutMs: 60_000 });
    return { ...r, fail: () => new GuruError(r.code === 1 ? "not_found" : "failed_precondition", `${what}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`) };
  }
  return {
    async list(key) {
      const r = await call(regQueryArgv(key), `registry key ${key}`);
      if (r.code !== 0) throw r.fail();
      return parseRegQuery(r.stdout, key);
    },
    async read(key, name) {
      const r = await call(regQueryArgv(key, name), `registry value ${key}\\${name}`);
      if (r.code !== 0) {
        // The key exists but not the value: answer "absent", as PowerShell does.
        const keyCheck = await call(regQueryArgv(key), `registry key ${key}`);
        if (keyCheck.code !== 0) throw keyCheck.fail();
        return undefined;
      }
      return parseRegQuery(r.stdout, key, { defaultValueQuery: name === "" }).values[0];
    },
    async write(key, value) {
      const r = await call(regAddArgv(key, value), `writing ${key}\\${value.name}`);
      if (r.code !== 0) throw new GuruError("failed_precondition", `writing ${key}\\${value.name}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    },
    async delete(key, name) {
      const r = await call(regDeleteArgv(key, name), `deleting ${key}\\${name}`);
      if (r.code !== 0) throw r.fail();
    },
  };
}
