// The reasons in code and in CONTRACT.md are the same set, with the same codes:
// the contract is what clients branch on.
import { readFileSync } from "node:fs";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { describe, expect, it } from "vitest";
import { codeOfKind } from "./api-errors.ts";
import { errorKinds, errorReasons, GuruError, type ErrorReason } from "./errors.ts";

function contractReasons(): Map<string, string> {
  const text = readFileSync(new URL("../CONTRACT.md", import.meta.url), "utf8");
  const section = text.slice(text.indexOf("### Reasons"), text.indexOf("## Changelog"));
  const rows = [...section.matchAll(/^\| `([A-Z0-9_]+)` \| `([a-z_]+)` \|/gm)];
  return new Map(rows.map((m) => [m[1], m[2]]));
}

describe("error reasons", () => {
  it("CONTRACT.md lists every reason once, with the code its kind maps to", () => {
    const listed = contractReasons();
    expect([...listed.keys()].sort()).toEqual(Object.keys(errorReasons).sort());
    for (const [reason, kind] of Object.entries(errorReasons)) {
      expect(listed.get(reason), reason).toBe(codeToString(codeOfKind[kind]));
    }
  });

  it("reasons are UPPER_SNAKE and each kind's default reason belongs to that kind", () => {
    for (const reason of Object.keys(errorReasons)) expect(reason).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    for (const kind of errorKinds) expect(errorReasons[new GuruError(kind, "x").reason as ErrorReason]).toBe(kind);
  });

  it("an error without a reason takes its kind's default; metadata values become strings, undefined ones are dropped", () => {
    const err = new GuruError("rate_limited", "slow down", { metadata: { retryAfterMs: 1500, big: 2n ** 60n, ok: true, gone: undefined } });
    expect(err.reason).toBe("RATE_LIMITED");
    expect(err.metadata).toEqual({ retryAfterMs: "1500", big: "1152921504606846976", ok: "true" });
    expect(new GuruError("denied", "x", { reason: "PATH_NOT_ALLOWED" satisfies ErrorReason }).reason).toBe("PATH_NOT_ALLOWED");
  });
});

describe("throw sites", () => {
  it("give each reason with the kind it belongs to", async () => {
    const { readdir } = await import("node:fs/promises");
    const root = new URL("..", import.meta.url);
    const mismatches: string[] = [];
    for (const dir of ["server", "agent", "lib", "cli", "mcp"]) {
      for (const file of await readdir(new URL(dir, root), { recursive: true })) {
        if (!file.endsWith(".ts") || file.endsWith(".test.ts")) continue;
        const text = readFileSync(new URL(`${dir}/${file}`, root), "utf8");
        // A reason within the same constructor call (before the next one, within a few lines).
        for (const m of text.matchAll(/new GuruError\(\s*"(\w+)"((?:(?!new GuruError)[\s\S]){0,600}?)reason: "([A-Z0-9_]+)"/g)) {
          const [, kind, between, reason] = m;
          if (between.includes(");\n")) continue; // the reason belongs to a later statement
          if (errorReasons[reason as ErrorReason] !== kind) mismatches.push(`${dir}/${file}: ${kind} with ${reason}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });
});
