// The agent's consent: the local policy's mode, the terminal prompt (over a
// real stream pair), the consent.command (a real child process), nobody to
// ask, timeouts, and approvals bound to one session and its capabilities.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import type { LocalPolicy } from "../policy/local-policy.ts";
import { createConsentHandler } from "./consent-handler.ts";
import { createConsentPrompter, type ConsentPrompter } from "./prompter.ts";

const logger = silentLogger();
const question = (sessionId: string, inMs = 5000) => ({
  sessionId,
  technician: "alice@acme",
  partner: "acme",
  capabilities: ["exec"],
  expiresAt: new Date(Date.now() + inMs),
});
const policy = (mode: LocalPolicy["consent"]["mode"], requiredForEverySession = false): LocalPolicy["consent"] => ({ mode, requiredForEverySession });
const never: ConsentPrompter = { ask: () => Promise.reject(new Error("the policy must answer without asking")) };

describe("consent handler", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "guru-consent-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function script(name: string, body: string): Promise<string> {
    const file = join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  }

  it("answers from the policy alone with auto-approve and deny", async () => {
    const auto = createConsentHandler({ policy: policy("auto-approve"), prompter: never, logger });
    expect(await auto.handle(question("s1"))).toMatchObject({ approved: true, responder: "local policy (auto-approve)" });
    expect(auto.tunnel("s1")).toEqual({ ok: true, capabilities: ["exec"] });
    const deny = createConsentHandler({ policy: policy("deny"), prompter: never, logger });
    const answer = await deny.handle(question("s2"));
    expect(answer).toMatchObject({ approved: false, timedOut: false });
    expect(answer.reason).toMatch(/consent\.mode deny/);
    expect(deny.tunnel("s2")).toEqual({ ok: true });
  });

  it("asks at the terminal: y approves, anything else declines", async () => {
    for (const [typed, approved] of [
      ["y\n", true],
      ["yes\n", true],
      ["n\n", false],
      ["\n", false],
    ] as const) {
      const input = new PassThrough();
      const output = new PassThrough();
      let shown = "";
      output.on("data", (d) => (shown += d));
      const handler = createConsentHandler({ policy: policy("ask"), prompter: createConsentPrompter({ terminal: { input, output }, logger }), logger });
      const answering = handler.handle(question("t1"));
      await new Promise((r) => setTimeout(r, 20));
      input.write(typed);
      const answer = await answering;
      expect(answer.approved, JSON.stringify(typed)).toBe(approved);
      expect(shown).toContain("alice@acme (acme) asks for remote access to this computer: exec");
      expect(answer.responder).toMatch(/\(terminal\)$/);
    }
  });

  it("runs consent.command with the request in its environment: exit 0 approves, else its first line is the reason", async () => {
    const approve = await script("approve.sh", 'test "$GURU_CONSENT_TECHNICIAN" = "alice@acme" && test "$GURU_CONSENT_CAPABILITIES" = exec');
    const yes = createConsentHandler({ policy: policy("ask"), prompter: createConsentPrompter({ command: [approve], logger }), logger });
    expect(await yes.handle(question("c1"))).toMatchObject({ approved: true, timedOut: false });
    const decline = await script("decline.sh", "echo 'busy right now'; exit 3");
    const no = createConsentHandler({ policy: policy("ask"), prompter: createConsentPrompter({ command: [decline], logger }), logger });
    expect(await no.handle(question("c2"))).toMatchObject({ approved: false, reason: "busy right now" });
    const missing = createConsentHandler({
      policy: policy("ask"),
      prompter: createConsentPrompter({ command: [join(dir, "no-such-program")], logger }),
      logger,
    });
    const err = await missing.handle(question("c3"));
    expect(err.approved).toBe(false);
    expect(err.reason).toMatch(/could not start \(ENOENT\)/);
  });

  it("denies when nobody can answer, and when nobody answers in time (the dialog is killed)", async () => {
    const nobody = createConsentHandler({ policy: policy("ask"), prompter: createConsentPrompter({ logger }), logger });
    expect((await nobody.handle(question("n1"))).reason).toMatch(/nobody can answer/);
    const hang = await script("hang.sh", "exec sleep 30");
    const slow = createConsentHandler({ policy: policy("ask"), prompter: createConsentPrompter({ command: [hang], logger }), logger });
    const started = Date.now();
    const answer = await slow.handle(question("n2", 400));
    expect(answer).toMatchObject({ approved: false, timedOut: true });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(slow.tunnel("n2")).toEqual({ ok: true });
  });

  it("binds an approval to its session, withdraws a prompt when the session ends, and refuses unapproved tunnels when every session needs a person", async () => {
    const approve = await script("approve-any.sh", "exit 0");
    const strict = createConsentHandler({ policy: policy("ask", true), prompter: createConsentPrompter({ command: [approve], logger }), logger });
    expect(strict.tunnel("other")).toMatchObject({ ok: false });
    await strict.handle(question("a1"));
    expect(strict.tunnel("a1")).toEqual({ ok: true, capabilities: ["exec"] });
    expect(strict.tunnel("a2")).toMatchObject({ ok: false });
    strict.forget("a1");
    expect(strict.tunnel("a1")).toMatchObject({ ok: false });

    const hang = await script("hang2.sh", "exec sleep 30");
    const withdrawn = createConsentHandler({ policy: policy("ask", true), prompter: createConsentPrompter({ command: [hang], logger }), logger });
    const pending = withdrawn.handle(question("w1", 20_000));
    await new Promise((r) => setTimeout(r, 100));
    withdrawn.forget("w1");
    expect(await pending).toMatchObject({ approved: false });
    expect(withdrawn.tunnel("w1")).toMatchObject({ ok: false });
  });
});
