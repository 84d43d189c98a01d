import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { checkCommand, loadLocalPolicy, requireCapability, type LocalPolicy } from "./local-policy.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "guru-policy-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const defaults = { allowedPaths: ["/srv/agent"] };

async function policyFile(name: string, content: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

async function loadError(file: string): Promise<GuruError> {
  const err = await loadLocalPolicy({ file, defaults }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GuruError);
  return err as GuruError;
}

function policy(commands: Partial<LocalPolicy["commands"]>): LocalPolicy {
  return {
    allowedPaths: ["/srv"],
    commands: { deny: commands.deny ?? [], allow: commands.allow ?? [] },
    capabilities: { exec: true, files: true, services: false, registry: false, terminal: false },
    exec: { allowEnv: [] },
    consent: { mode: "ask", requiredForEverySession: false },
    services: { allow: [], deny: [], control: true },
    registryKeys: [],
  };
}

describe("loadLocalPolicy", () => {
  it("uses the defaults when no file is configured", async () => {
    expect(await loadLocalPolicy({ defaults })).toEqual({
      allowedPaths: ["/srv/agent"],
      commands: { deny: [], allow: [] },
      capabilities: { exec: true, files: true, services: false, registry: false, terminal: false },
      exec: { allowEnv: [] },
      consent: { mode: "ask", requiredForEverySession: false, command: undefined },
      services: { allow: [], deny: [], control: true },
      registryKeys: ["HKLM\\SOFTWARE", "HKCU"],
    });
  });

  it("reads the consent section: an explicit ask needs a person for every session", async () => {
    const ask = await loadLocalPolicy({
      file: await policyFile("consent-ask.json", { consent: { mode: "ask", command: ["zenity", "--question"] } }),
      defaults,
    });
    expect(ask.consent).toEqual({ mode: "ask", requiredForEverySession: true, command: ["zenity", "--question"] });
    const auto = await loadLocalPolicy({ file: await policyFile("consent-auto.json", { consent: { mode: "auto-approve" } }), defaults });
    expect(auto.consent).toEqual({ mode: "auto-approve", requiredForEverySession: false, command: undefined });
  });

  it("refuses an unknown consent mode and an empty consent command, naming the field", async () => {
    const badMode = await loadError(await policyFile("consent-bad-mode.json", { consent: { mode: "maybe" } }));
    expect(badMode.kind).toBe("invalid");
    expect(badMode.message).toContain("consent.mode");
    const emptyCommand = await loadError(await policyFile("consent-empty.json", { consent: { command: [] } }));
    expect(emptyCommand.message).toContain("consent.command");
    const typo = await loadError(await policyFile("consent-typo.json", { consent: { mdoe: "deny" } }));
    expect(typo.message).toContain("consent");
  });

  it("reads a full file", async () => {
    const file = await policyFile("full.json", {
      allowedPaths: ["/a", "/b"],
      commands: { deny: ["rm *"], allow: ["ls *", "re:^git (status|log)$"] },
      capabilities: { exec: true, files: false, services: true, registry: false, terminal: true },
      exec: { allowEnv: ["PATH", "PYTHON*"] },
    });
    const loaded = await loadLocalPolicy({ file, defaults });
    expect(loaded.allowedPaths).toEqual(["/a", "/b"]);
    expect(loaded.commands).toEqual({ deny: ["rm *"], allow: ["ls *", "re:^git (status|log)$"] });
    expect(loaded.capabilities).toEqual({ exec: true, files: false, services: true, registry: false, terminal: true });
    expect(loaded.exec).toEqual({ allowEnv: ["PATH", "PYTHON*"] });
  });

  it("refuses allowEnv entries that are not names, and any GURU_* name", async () => {
    for (const [entry, message] of [
      ["LD PRELOAD", "must be a variable name"],
      ["*", "must be a variable name"],
      ["GURU*", "GURU_* variables belong to the agent"],
      ["GURU_AGENT_KEY", "GURU_* variables belong to the agent"],
      ["guru_*", "GURU_* variables belong to the agent"],
    ] as const) {
      const err = await loadError(await policyFile("allow-env.json", { exec: { allowEnv: [entry] } }));
      expect(err.kind, entry).toBe("invalid");
      expect(err.message, entry).toContain("exec.allowEnv[0]");
      expect(err.message, entry).toContain(message);
    }
  });

  it("fills missing fields from the defaults", async () => {
    const file = await policyFile("partial.json", { capabilities: { terminal: true } });
    const loaded = await loadLocalPolicy({ file, defaults });
    expect(loaded.allowedPaths).toEqual(["/srv/agent"]);
    expect(loaded.commands).toEqual({ deny: [], allow: [] });
    expect(loaded.capabilities).toEqual({ exec: true, files: true, services: false, registry: false, terminal: true });
  });

  it("names the file and the field of a wrong type", async () => {
    const file = await policyFile("bad-type.json", { capabilities: { exec: "yes" } });
    const err = await loadError(file);
    expect(err.kind).toBe("invalid");
    expect(err.message).toContain(file);
    expect(err.message).toContain("capabilities.exec");
  });

  it("refuses a relative allowed path, naming its index", async () => {
    const err = await loadError(await policyFile("relative.json", { allowedPaths: ["/ok", "relative/dir"] }));
    expect(err.message).toMatch(/allowedPaths\[1\]: must be an absolute path/);
  });

  it("refuses an empty allowed path list", async () => {
    const err = await loadError(await policyFile("empty-paths.json", { allowedPaths: [] }));
    expect(err.message).toMatch(/allowedPaths: must list at least one path/);
  });

  it("refuses an invalid regular expression, naming the rule", async () => {
    const err = await loadError(await policyFile("bad-re.json", { commands: { deny: ["ok", "re:(unclosed"] } }));
    expect(err.message).toMatch(/commands\.deny\[1\]: invalid regular expression/);
  });

  it("refuses unknown fields instead of ignoring a typo", async () => {
    const err = await loadError(await policyFile("typo.json", { alowedPaths: ["/x"] }));
    expect(err.message).toContain("alowedPaths");
    const nested = await loadError(await policyFile("typo2.json", { capabilities: { shell: true } }));
    expect(nested.message).toContain("shell");
  });

  it("refuses a file that is not JSON", async () => {
    const file = await policyFile("not-json.json", "{ allowedPaths: [");
    const err = await loadError(file);
    expect(err.kind).toBe("invalid");
    expect(err.message).toMatch(new RegExp(`local policy ${file} is not valid JSON`));
  });

  it("refuses a configured file that does not exist (never falls back to defaults)", async () => {
    const file = join(dir, "missing.json");
    const err = await loadError(file);
    expect(err.kind).toBe("invalid");
    expect(err.message).toBe(`local policy ${file} cannot be read (ENOENT)`);
  });

  it("refuses a top level that is not an object", async () => {
    const err = await loadError(await policyFile("array.json", []));
    expect(err.message).toContain("(root)");
  });
});

describe("checkCommand", () => {
  it("allows everything not denied when the allow list is empty", () => {
    expect(checkCommand(policy({}), "anything at all")).toEqual({ allowed: true });
  });

  it("refuses a command matching a deny glob, naming the rule", () => {
    const p = policy({ deny: ["rm -rf *"] });
    expect(checkCommand(p, "rm -rf /")).toEqual({ allowed: false, rule: "rm -rf *" });
    expect(checkCommand(p, "  rm   -rf   /tmp/x  ")).toEqual({ allowed: false, rule: "rm -rf *" });
    expect(checkCommand(p, "RM -RF /")).toEqual({ allowed: false, rule: "rm -rf *" });
    expect(checkCommand(p, "rm -r /")).toEqual({ allowed: true });
  });

  it("matches a glob against the whole command", () => {
    const p = policy({ deny: ["reboot"] });
    expect(checkCommand(p, "reboot").allowed).toBe(false);
    expect(checkCommand(p, "echo reboot").allowed).toBe(true);
    expect(checkCommand(policy({ deny: ["*reboot*"] }), "echo x; reboot now").allowed).toBe(false);
  });

  it("treats regex metacharacters in a glob literally", () => {
    const p = policy({ deny: ["cat a.txt", "echo (x)?"] });
    expect(checkCommand(p, "cat a.txt").allowed).toBe(false);
    expect(checkCommand(p, "cat aXtxt").allowed).toBe(true);
    expect(checkCommand(p, "echo (x)?").allowed).toBe(false);
    expect(checkCommand(p, "echo x").allowed).toBe(true);
  });

  it("searches re: rules in the command", () => {
    const p = policy({ deny: ["re:\\bshutdown\\b"] });
    expect(checkCommand(p, "sudo shutdown -h now")).toEqual({ allowed: false, rule: "re:\\bshutdown\\b" });
    expect(checkCommand(p, "echo shutdownx").allowed).toBe(true);
  });

  it("checks deny before allow", () => {
    const p = policy({ deny: ["ls /root*"], allow: ["ls *"] });
    expect(checkCommand(p, "ls /root/.ssh")).toEqual({ allowed: false, rule: "ls /root*" });
    expect(checkCommand(p, "ls /tmp")).toEqual({ allowed: true });
  });

  it("with an allow list, refuses what matches none", () => {
    const p = policy({ allow: ["df -h", "re:^git (status|log)$"] });
    expect(checkCommand(p, "df -h")).toEqual({ allowed: true });
    expect(checkCommand(p, "git status")).toEqual({ allowed: true });
    expect(checkCommand(p, "git push")).toEqual({ allowed: false, rule: "not in the allow list" });
  });

  it("does not let an allow glob's * or space cross shell control characters", () => {
    const p = policy({ allow: ["ls *"] });
    expect(checkCommand(p, "ls -la /tmp").allowed).toBe(true);
    for (const sneaky of [
      "ls; rm -rf /",
      "ls && rm -rf /",
      "ls | sh",
      "ls $(rm -rf /)",
      "ls `rm -rf /`",
      "ls > /etc/passwd",
      "ls \nrm -rf /",
      "ls x\nrm -rf /",
    ]) {
      expect(checkCommand(p, sneaky), sneaky).toEqual({ allowed: false, rule: "not in the allow list" });
    }
  });

  it("follows edits of the rule lists", () => {
    const p = policy({ deny: ["a"] });
    expect(checkCommand(p, "b").allowed).toBe(true);
    p.commands.deny.push("b");
    expect(checkCommand(p, "b").allowed).toBe(false);
  });
});

describe("requireCapability", () => {
  it("passes an enabled capability and refuses a disabled one", () => {
    const p = policy({});
    expect(() => requireCapability(p, "exec")).not.toThrow();
    let err: unknown;
    try {
      requireCapability(p, "terminal");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuruError);
    expect((err as GuruError).kind).toBe("denied");
    expect((err as GuruError).message).toBe("the agent's local policy disables terminal");
  });
});
