// Windows path forms the allowlist refuses before any filesystem call. Each
// of these names something other than a plain file under a drive root, and
// merely touching some of them has effects:
// - UNC paths (\\host\share, //host/share): resolving one connects to the host,
//   which offers it the agent's credentials (NTLM);
// - \\?\ and \\.\ (the Win32 file and device namespaces): they skip Win32 path
//   normalisation or name devices and pipes directly;
// - device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, CONIN$, CONOUT$) in any
//   segment, with any extension and any trailing dots or spaces ("nul.txt",
//   "COM1 .log.", "dir\aux\x"): Windows opens the device, wherever the segment is;
// - alternate data streams ("report.txt:hidden"): data beside a file that
//   listings do not show.
// UNC and namespace paths are allowed only when an allowed root is of the same
// form (the ordinary inside check then applies); the others never are.
import nodePath from "node:path";

// COM¹-³ and LPT¹-³ (superscript digits) are device names too.
const deviceNames = /^(CON|PRN|AUX|NUL|COM[1-9\u00b9\u00b2\u00b3]|LPT[1-9\u00b9\u00b2\u00b3]|CONIN\$|CONOUT\$)$/i;

export type WindowsPathForm = "drive" | "unc" | "namespace";

/** The form of an absolute win32 path (as path.win32.resolve returns it). */
export function windowsPathForm(abs: string): WindowsPathForm {
  if (abs.startsWith("\\\\?\\") || abs.startsWith("\\\\.\\")) return "namespace";
  if (abs.startsWith("\\\\")) return "unc";
  return "drive";
}

/** True when Windows would open a device for this one path segment. */
function isWindowsDeviceName(segment: string): boolean {
  // Windows drops trailing dots and spaces, then matches the part before the first dot (spaces before it dropped too).
  const trimmed = segment.replace(/[. ]+$/, "");
  const stem = trimmed.split(".")[0].replace(/ +$/, "");
  return deviceNames.test(stem);
}

/** Why `abs` (resolved from `input`) is refused on Windows, or undefined. `rootForms` are the forms of the allowed roots. */
export function windowsPathRefusal(abs: string, input: string, rootForms: readonly WindowsPathForm[]): string | undefined {
  const P = nodePath.win32;
  const form = windowsPathForm(abs);
  if (form === "unc" && !rootForms.includes("unc")) {
    return `path "${input}" is a network (UNC) path, which is allowed only when an allowed path is one`;
  }
  if (form === "namespace" && !rootForms.includes("namespace")) {
    return `path "${input}" uses the \\\\?\\ or \\\\.\\ namespace, which is allowed only when an allowed path does`;
  }
  const rest = abs.slice(P.parse(abs).root.length);
  if (rest.includes(":")) return `path "${input}" names an alternate data stream`;
  const device = rest.split("\\").find((segment) => segment !== "" && isWindowsDeviceName(segment));
  if (device !== undefined) return `path "${input}" names the Windows device "${device}"`;
  return undefined;
}
