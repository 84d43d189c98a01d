// What a service name, a registry key and a value name may look like. They
// reach the service manager as argv (or as base64 data inside a fixed
// PowerShell script), never as shell text; refusing everything else up front
// also keeps a name like `x; touch pwned` out of every log and error path
// that might one day be careless with it.
import { GuruError } from "../../lib/errors.ts";

const maxServiceNameChars = 256;
// systemd units (foo@bar.service, foo\x2dbar), SysV scripts, launchd labels,
// Windows service names. No shell metacharacters, no path separators, no
// wildcards, no leading dash (it would read as an option).
const posixServiceName = /^[A-Za-z0-9_][A-Za-z0-9_.@:+\\-]*$/;
// Windows service names may contain spaces ("Bonjour Service" is a real one).
const windowsServiceName = /^[A-Za-z0-9_][A-Za-z0-9_.@:+ -]*$/;

export function validateServiceName(name: string, platform: NodeJS.Platform): string {
  if (typeof name !== "string" || name === "") throw new GuruError("invalid", "a service name is required");
  if (name.length > maxServiceNameChars) throw new GuruError("invalid", `a service name is at most ${maxServiceNameChars} characters`);
  const pattern = platform === "win32" ? windowsServiceName : posixServiceName;
  if (!pattern.test(name) || name.endsWith(" ")) {
    throw new GuruError(
      "invalid",
      `"${printable(name)}" is not a service name: use letters, digits and . _ - @ : +${platform === "win32" ? " and spaces" : ""}`,
      {
        details: { name: printable(name) },
      },
    );
  }
  return name;
}

/** Hive names as the agent reports them, with the spellings it accepts. */
const registryHives: Record<string, string> = {
  HKLM: "HKLM",
  HKEY_LOCAL_MACHINE: "HKLM",
  HKCU: "HKCU",
  HKEY_CURRENT_USER: "HKCU",
  HKU: "HKU",
  HKEY_USERS: "HKU",
  HKCR: "HKCR",
  HKEY_CLASSES_ROOT: "HKCR",
  HKCC: "HKCC",
  HKEY_CURRENT_CONFIG: "HKCC",
};

export interface RegistryKey {
  hive: "HKLM" | "HKCU" | "HKU" | "HKCR" | "HKCC";
  /** Below the hive, backslash-separated; "" for the hive itself. */
  path: string;
  /** HKLM\SOFTWARE\Vendor */
  text: string;
}

const maxKeySegmentChars = 255;
const maxValueNameChars = 16_383;

/** Parses and normalises a key; refuses control characters, wildcards, '/' and empty segments. */
export function parseRegistryKey(key: string): RegistryKey {
  if (typeof key !== "string" || key.trim() === "") throw new GuruError("invalid", "a registry key is required, such as HKLM\\SOFTWARE\\Vendor");
  const segments = key.trim().replace(/\\+$/, "").split("\\");
  const hive = registryHives[segments[0].toUpperCase()] as RegistryKey["hive"] | undefined;
  if (hive === undefined) {
    throw new GuruError("invalid", `registry key "${printable(key)}" must start with HKLM, HKCU, HKU, HKCR or HKCC`, { details: { key: printable(key) } });
  }
  const rest = segments.slice(1);
  for (const segment of rest) {
    if (segment === "" || segment.length > maxKeySegmentChars || hasControlOr(segment, "*?/") || segment === "." || segment === "..") {
      throw new GuruError("invalid", `registry key "${printable(key)}" has an invalid part "${printable(segment)}"`, { details: { key: printable(key) } });
    }
  }
  const path = rest.join("\\");
  return { hive, path, text: path === "" ? hive : `${hive}\\${path}` };
}

export function validateValueName(name: string): string {
  if (typeof name !== "string") throw new GuruError("invalid", "a value name must be text");
  if (name.length > maxValueNameChars) throw new GuruError("invalid", `a value name is at most ${maxValueNameChars} characters`);
  if (name.includes("\0")) throw new GuruError("invalid", "a value name must not contain NUL characters");
  return name;
}

const isControl = (c: string) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f;
/** Control characters are never part of a registry key; some characters are not either. */
const hasControlOr = (text: string, others: string) => [...text].some((c) => isControl(c) || others.includes(c));

/** For messages: control characters shown escaped, long names cut. */
function printable(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return [...shown].map((c) => (isControl(c) ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : c)).join("");
}
