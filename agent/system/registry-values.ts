// Registry values in the agent's one text form (see types.ts), checked
// before anything is written: a DWORD is an unsigned 32-bit decimal, binary
// is even-length hex, strings carry no NUL.
import { GuruError } from "../../lib/errors.ts";
import type { RegistryValue, RegistryValueType } from "./types.ts";

/** Values larger than this are refused: they would not fit the PowerShell command line. */
const maxRegistryDataChars = 4096;

export function checkRegistryValue(value: RegistryValue): RegistryValue {
  const { type } = value;
  const fail = (why: string) => new GuruError("invalid", `a ${type.toUpperCase()} value ${why}`, { details: { type } });
  switch (type) {
    case "sz":
    case "expand_sz":
      if (value.data.includes("\0")) throw fail("must not contain NUL characters");
      if (value.data.length > maxRegistryDataChars) throw fail(`is at most ${maxRegistryDataChars} characters`);
      return { ...value, multiString: [] };
    case "multi_sz": {
      const total = value.multiString.reduce((n, s) => n + s.length + 1, 0);
      if (value.multiString.some((s) => s.includes("\0"))) throw fail("must not contain NUL characters");
      if (total > maxRegistryDataChars) throw fail(`is at most ${maxRegistryDataChars} characters in all`);
      return { ...value, data: "" };
    }
    case "dword":
    case "qword": {
      const bits = type === "dword" ? 32n : 64n;
      if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(value.data.trim()))
        throw fail(`must be a non-negative whole number, decimal or 0x hex (got "${value.data.slice(0, 40)}")`);
      const n = BigInt(value.data.trim());
      if (n >= 1n << bits) throw fail(`must be below 2^${bits}`);
      return { ...value, data: n.toString(10), multiString: [] };
    }
    case "binary":
    case "none": {
      const hex = value.data.replace(/[\s,]/g, "").toLowerCase();
      if (!/^([0-9a-f]{2})*$/.test(hex)) throw fail("must be hex bytes such as 01ff");
      if (hex.length > maxRegistryDataChars) throw fail(`is at most ${maxRegistryDataChars / 2} bytes`);
      return { ...value, data: hex, multiString: [] };
    }
  }
}

// Microsoft.Win32.RegistryValueKind
export const valueKindNumbers: Record<RegistryValueType, number> = { sz: 1, expand_sz: 2, binary: 3, dword: 4, multi_sz: 7, qword: 11, none: -1 };
const kindTypes: Record<number, RegistryValueType> = { 1: "sz", 2: "expand_sz", 3: "binary", 4: "dword", 7: "multi_sz", 11: "qword", [-1]: "none", 0: "none" };

export function typeOfKind(kind: number): RegistryValueType {
  return kindTypes[kind] ?? "none";
}

/** DWORD and QWORD come from .NET signed (Int32, Int64); the agent reports them unsigned. */
export function unsignedDecimal(text: string, bits: 32 | 64): string {
  return BigInt.asUintN(bits, BigInt(text.trim())).toString(10);
}
