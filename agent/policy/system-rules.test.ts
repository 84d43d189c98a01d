import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { GuruError } from "../../lib/errors.ts";
import { loadLocalPolicy, type LocalPolicy } from "./local-policy.ts";
import { requireRegistryKey, requireServiceControl, requireSystemCapability } from "./system-rules.ts";

function policy(p: Partial<LocalPolicy>): LocalPolicy {
  return {
    allowedPaths: ["/srv"],
    commands: { deny: [], allow: [] },
    capabilities: { exec: true, files: true, services: true, registry: true, terminal: false },
    services: { allow: [], deny: [], control: true },
    registryKeys: ["HKLM\\SOFTWARE", "HKCU"],
    exec: { allowEnv: [] },
    consent: { mode: "ask", requiredForEverySession: false },
    ...p,
  };
}

function refusal(fn: () => void): GuruError {
  try {
    fn();
  } catch (err) {
    return err as GuruError;
  }
  throw new Error("expected a refusal");
}

describe("service and registry rules", () => {
  it("names the capability rule", () => {
    const err = refusal(() =>
      requireSystemCapability(policy({ capabilities: { exec: true, files: true, services: false, registry: false, terminal: false } }), "services"),
    );
    expect(err.kind).toBe("denied");
    expect(err.message).toContain("capabilities.services");
  });

  it("deny globs first, then the allow list, case-insensitively; control false allows listing only", () => {
    const p = policy({ services: { allow: ["nginx", "app-*"], deny: ["app-db*"], control: true } });
    expect(() => requireServiceControl(p, "nginx")).not.toThrow();
    expect(() => requireServiceControl(p, "APP-web")).not.toThrow();
    expect(refusal(() => requireServiceControl(p, "app-db-main")).message).toContain('services.deny "app-db*"');
    expect(refusal(() => requireServiceControl(p, "sshd")).message).toContain("services.allow");
    expect(refusal(() => requireServiceControl(p, "nginx-old")).kind).toBe("denied");
    expect(refusal(() => requireServiceControl(policy({ services: { allow: [], deny: [], control: false } }), "nginx")).message).toContain(
      "services.control is false",
    );
  });

  it("registry keys match whole parts of an allowed prefix, whatever the hive's spelling", () => {
    const p = policy({});
    expect(() => requireRegistryKey(p, "HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor")).not.toThrow();
    expect(() => requireRegistryKey(p, "hklm\\software")).not.toThrow();
    expect(() => requireRegistryKey(p, "HKCU\\Environment")).not.toThrow();
    const err = refusal(() => requireRegistryKey(p, "HKLM\\SOFTWAREX\\Vendor"));
    expect(err.kind).toBe("denied");
    expect(err.message).toBe("registry key HKLM\\SOFTWAREX\\Vendor is outside the agent's registryKeys (HKLM\\SOFTWARE, HKCU)");
    expect(refusal(() => requireRegistryKey(p, "HKLM\\SYSTEM\\CurrentControlSet")).details).toMatchObject({ rule: "registryKeys" });
  });

  it("loads the rules from the policy file and refuses malformed ones", async () => {
    const dir = await mkdtemp(join(tmpdir(), "guru-policy-"));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "p.json");
    await writeFile(file, JSON.stringify({ services: { deny: ["sshd"], control: false }, registryKeys: ["HKLM\\SOFTWARE\\Vendor"] }));
    const loaded = await loadLocalPolicy({ file, defaults: { allowedPaths: ["/srv"], capabilities: { services: true } } });
    expect(loaded.services).toEqual({ allow: [], deny: ["sshd"], control: false });
    expect(loaded.registryKeys).toEqual(["HKLM\\SOFTWARE\\Vendor"]);
    expect(loaded.capabilities.services).toBe(true);
    await writeFile(file, JSON.stringify({ services: { deny: ["x; rm"] } }));
    expect(((await loadLocalPolicy({ file, defaults: { allowedPaths: ["/srv"] } }).catch((e: unknown) => e)) as GuruError).message).toContain(
      "services.deny[0]",
    );
    await writeFile(file, JSON.stringify({ registryKeys: ["SOFTWARE\\Vendor"] }));
    expect(((await loadLocalPolicy({ file, defaults: { allowedPaths: ["/srv"] } }).catch((e: unknown) => e)) as GuruError).message).toContain(
      "registryKeys[0]",
    );
    // The file wins over the agent's --enable default.
    await writeFile(file, JSON.stringify({ capabilities: { services: false } }));
    expect((await loadLocalPolicy({ file, defaults: { allowedPaths: ["/srv"], capabilities: { services: true } } })).capabilities.services).toBe(false);
  });
});
