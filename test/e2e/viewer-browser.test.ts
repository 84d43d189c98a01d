// The web viewer in a real browser (Debian's chromium, headless, driven by
// playwright-core): a partner page on another origin embeds it, hands it a
// viewer token with postMessage, hears its lifecycle events, and types into a
// real shell on a real agent; on an attended agent it hears consent-pending,
// then connected or denied as the person answers; a page on an origin no key
// allows cannot frame it; and it replays a recorded terminal in order.
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Frame, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { SessionMode, SessionStatus } from "../../gen/guru/integration/v1/sessions_pb.js";
import { parseAsciicast } from "../../lib/asciicast.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { startHostPage, type HostPage } from "../support/host-page.ts";
import { createIntegrationClient, type IntegrationClient } from "../support/integration-client.ts";
import { errorOf } from "../support/rpc-errors.ts";
import { openShell, terminalAgentEnv } from "../support/terminal-helpers.ts";

const chromiumPath = "/usr/bin/chromium";

async function terminalRows(frame: Frame): Promise<string[]> {
  return frame.locator(".xterm-rows > div").evaluateAll((rows) => rows.map((r) => (r.textContent ?? "").trimEnd()));
}

function viewerEvents(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as { viewerEvents: string[] }).viewerEvents);
}

/**
 * The person at an attended endpoint, as the agent's consent.command: it logs
 * the question, then waits until the test writes the answer for that session.
 */
function consentScript(dir: string): string {
  return `#!/bin/sh
echo "$GURU_CONSENT_SESSION" >> "${dir}/asked.log"
while [ ! -f "${dir}/answer-$GURU_CONSENT_SESSION" ]; do sleep 0.05; done
case "$(cat "${dir}/answer-$GURU_CONSENT_SESSION")" in
  approve) exit 0 ;;
  *) echo "not now, I am presenting"; exit 1 ;;
esac
`;
}

/**
 * Serves the viewer with xterm's Terminal wrapped so every write is kept in
 * window.written: what the page put on the terminal, byte for byte and in order.
 */
async function recordTerminalWrites(page: Page): Promise<void> {
  await page.route("**/viewer/viewer.js", async (route) => {
    const response = await route.fetch();
    const body = (await response.text()).replace('from "./vendor/xterm.mjs"', 'from "./vendor/xterm-recorded.mjs"');
    await route.fulfill({ response, body });
  });
  await page.route("**/viewer/vendor/xterm-recorded.mjs", (route) =>
    route.fulfill({
      contentType: "text/javascript; charset=utf-8",
      body: `import { Terminal as Base } from "./xterm.mjs";
export class Terminal extends Base {
  write(data, callback) {
    (globalThis.written ??= []).push(typeof data === "string" ? data : new TextDecoder().decode(data));
    return super.write(data, callback);
  }
}`,
    }),
  );
}

async function viewerFrame(page: Page): Promise<Frame> {
  const handle = await page.locator("#viewer").elementHandle();
  const frame = await handle?.contentFrame();
  if (!frame) throw new Error("the viewer iframe has no frame");
  return frame;
}

describe("web viewer in headless chromium", () => {
  let h: TestServer;
  let browser: BrowserContext;
  let profileDir: string;
  let allowed: HostPage;
  let blocked: HostPage;
  let viewerUrl = "";
  let partner: IntegrationClient;
  let sessionId = "";
  let consentDir = "";
  let attendedStateDir = "";
  let mint: (origin: string) => Promise<string> = () => Promise.reject(new Error("no partner yet"));
  const attended = { ref: { case: "externalId" as const, value: "desk-attended" } };

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) throw new Error(`chromium is not installed at ${chromiumPath}: run \`apt-get install -y chromium\` (.ci/run does)`);
    h = await startTestServer({ kind: "pglite", config: { consentTimeoutMs: 30_000 } });
    allowed = await startHostPage({ viewerUrl: () => viewerUrl, mintToken: (origin) => mint(origin) });
    blocked = await startHostPage({ viewerUrl: () => viewerUrl, mintToken: (origin) => mint(origin) });
    const { key } = await h.admin.admin.createIntegrationKey({ name: "partner", allowedOrigins: [allowed.origin] });
    partner = createIntegrationClient(h.url, key);
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "pc-viewer" });
    // An attended endpoint beside it: the person answers through the consent command.
    consentDir = await mkdtemp(join(h.tempDir, "consent-"));
    attendedStateDir = await mkdtemp(join(h.tempDir, "attended-state-"));
    await writeFile(join(consentDir, "ask.sh"), consentScript(consentDir));
    await chmod(join(consentDir, "ask.sh"), 0o755);
    const desk = await partner.provisionAgentKey({ externalId: attended.ref.value });
    const attendedEnv = await terminalAgentEnv(h, { consent: { mode: "ask", command: [join(consentDir, "ask.sh")] } });
    const [unattendedAgent, attendedAgent] = await Promise.all([
      h.spawnAgent({ agentId, agentKey, env: await terminalAgentEnv(h) }),
      h.spawnAgent({ agentId: desk.agentId, agentKey: desk.agentKey, env: attendedEnv, stateDir: attendedStateDir }),
    ]);
    await Promise.all([unattendedAgent.waitOnline(), attendedAgent.waitOnline()]);
    const started = await partner.startRemoteControl({ agent: { ref: { case: "externalId", value: "pc-viewer" } }, mode: SessionMode.UNATTENDED });
    viewerUrl = started.viewerUrl;
    sessionId = started.session!.sessionId;
    // As a partner's backend does: mint per page load, for the page's own origin.
    mint = async (origin) => (await partner.mintViewerToken({ sessionId, origin })).token;
    profileDir = await mkdtemp(join(tmpdir(), "guru-chromium-"));
    // A fresh profile (--user-data-dir) per run.
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await allowed?.close();
    await blocked?.close();
    await h?.close();
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
  });

  it("embedded on an allowed origin: lifecycle events in order, a shell that answers, a screenshot", async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 900, height: 520 });
    await page.goto(`${allowed.origin}/`);
    await expect
      .poll(() => page.evaluate(() => (globalThis as unknown as { viewerEvents: string[] }).viewerEvents), { timeout: 15_000 })
      .toEqual(["ready", "connected"]);
    const frame = await viewerFrame(page);
    expect(await frame.locator("#chrome").isVisible()).toBe(false);
    await frame.locator(".xterm-helper-textarea").focus();
    await page.keyboard.type("echo hello\n");
    await expect.poll(() => terminalRows(frame), { timeout: 15_000 }).toContain("hello");

    const artifacts = process.env.GURU_TEST_ARTIFACTS ?? join(tmpdir(), "guru-test-artifacts");
    await mkdir(artifacts, { recursive: true });
    const shot = join(artifacts, "viewer.png");
    await page.locator("#viewer").screenshot({ path: shot });
    expect(existsSync(shot)).toBe(true);
    if (process.env.GURU_VIEWER_SCREENSHOT) await copyFile(shot, process.env.GURU_VIEWER_SCREENSHOT);

    await page.keyboard.type("exit\n");
    await expect
      .poll(() => page.evaluate(() => (globalThis as unknown as { viewerEvents: string[] }).viewerEvents), { timeout: 15_000 })
      .toEqual(["ready", "connected", "closed"]);
    await page.close();
  });

  it("cannot be framed by an origin no integration key allows", async () => {
    const page = await browser.newPage();
    const console: string[] = [];
    page.on("console", (m) => console.push(m.text()));
    await page.goto(`${blocked.origin}/`);
    await expect.poll(() => console.join("\n"), { timeout: 10_000 }).toMatch(/frame-ancestors/);
    const frame = await viewerFrame(page);
    expect(frame.url()).not.toContain("/viewer/");
    expect(await frame.locator(".xterm").count()).toBe(0);
    // Nothing reached the page either: the viewer never ran.
    expect(await page.evaluate(() => (globalThis as unknown as { viewerEvents: string[] }).viewerEvents)).toEqual([]);
    await page.close();
  });

  /** Starts an attended session (the call waits for the person) and returns it with its pending session's id. */
  async function startAttended(): Promise<{ creating: Promise<unknown>; pendingId: string }> {
    const creating = partner.createSession({ agent: attended, mode: SessionMode.ATTENDED, technician: "carol", capabilities: ["exec"] });
    // Caught at once: the denied case expects the rejection later, and it must not go unhandled meanwhile.
    creating.catch(() => {});
    let pendingId = "";
    await expect
      .poll(
        async () => {
          const { sessions } = await partner.listSessions({ agent: attended, status: SessionStatus.PENDING });
          pendingId = sessions[0]?.sessionId ?? "";
          return pendingId;
        },
        { timeout: 15_000 },
      )
      .not.toBe("");
    // The viewer of that session, with tokens minted for it as the partner's backend does.
    viewerUrl = `${h.url}/viewer/?session=${pendingId}`;
    mint = async (origin) => (await partner.mintViewerToken({ sessionId: pendingId, origin })).token;
    return { creating, pendingId };
  }

  const answer = (pendingId: string, decision: "approve" | "deny") => writeFile(join(consentDir, `answer-${pendingId}`), decision);
  const agentTerminals = async (forSession: string) =>
    (await readFile(join(attendedStateDir, "operations.log"), "utf8").catch(() => ""))
      .split("\n")
      .filter((line) => line.includes(forSession) && line.includes('"operation":"terminal"'));

  it("on an attended agent: consent-pending until the person allows it, then connected, and a shell that answers", async () => {
    const { creating, pendingId } = await startAttended();
    const page = await browser.newPage();
    await page.goto(`${allowed.origin}/`);
    await expect.poll(() => viewerEvents(page), { timeout: 15_000 }).toEqual(["ready", "consent-pending"]);
    // Nothing runs on the endpoint while the person decides.
    expect(await agentTerminals(pendingId)).toEqual([]);
    await answer(pendingId, "approve");
    await expect.poll(() => viewerEvents(page), { timeout: 15_000 }).toEqual(["ready", "consent-pending", "connected"]);
    await creating;
    const frame = await viewerFrame(page);
    await frame.locator(".xterm-helper-textarea").focus();
    await page.keyboard.type("echo consented-$((6*7))\n");
    await expect.poll(() => terminalRows(frame), { timeout: 15_000 }).toContain("consented-42");
    await page.keyboard.type("exit\n");
    await expect.poll(() => viewerEvents(page), { timeout: 15_000 }).toEqual(["ready", "consent-pending", "connected", "closed"]);
    await page.close();
    await partner.endSession({ sessionId: pendingId });
  });

  it("on an attended agent the person denies: denied then closed and nothing else, and no terminal ever starts", async () => {
    const { creating, pendingId } = await startAttended();
    const page = await browser.newPage();
    await page.goto(`${allowed.origin}/`);
    await expect.poll(() => viewerEvents(page), { timeout: 15_000 }).toEqual(["ready", "consent-pending"]);
    await answer(pendingId, "deny");
    await expect.poll(() => viewerEvents(page), { timeout: 15_000 }).toEqual(["ready", "consent-pending", "denied", "closed"]);
    const err = await errorOf(creating);
    expect(err.code).toBe(Code.PermissionDenied);
    const frame = await viewerFrame(page);
    await expect.poll(async () => (await terminalRows(frame)).join(""), { timeout: 5_000 }).toMatch(/denied the session/);
    // Still exactly those four events a moment later, and no terminal on either side.
    await new Promise((r) => setTimeout(r, 300));
    expect(await viewerEvents(page)).toEqual(["ready", "consent-pending", "denied", "closed"]);
    await h.server.terminals.drain();
    expect(await h.server.store.terminals.list({ sessionId: pendingId, limit: 100 })).toEqual([]);
    expect(await agentTerminals(pendingId)).toEqual([]);
    expect((await partner.getSession({ sessionId: pendingId })).session?.status).toBe(SessionStatus.CLOSED);
    await page.close();
  });

  it("replays a recorded terminal: its output in order at its pace, the text on screen, a screenshot", async () => {
    // A real terminal, recorded: the viewer token's session, as its technician.
    const viewerToken = (await partner.mintViewerToken({ sessionId, origin: allowed.origin })).token;
    const shell = await openShell(h.url, { token: "", sessionId: "", viewerToken }, { origin: allowed.origin });
    shell.conn.write("echo replayed-42\n");
    await shell.until(/replayed-42\r\n/);
    shell.conn.write("exit\n");
    await shell.conn.exit;
    await h.server.terminals.drain();
    const recordingId = shell.conn.opened.terminalId;
    const technicianId = (await h.server.store.partnerSessions.get(sessionId))!.technicianId;
    const { token } = await h.admin.admin.issueToken({ technicianId });
    const cast = await (await fetch(`${h.url}/recordings/${recordingId}`, { headers: { authorization: `Bearer ${token}` } })).text();
    const { events } = parseAsciicast(cast);
    const output = events.filter((e) => e.code === "o");
    const recordedOutput = output.map((e) => e.data).join("");
    expect(recordedOutput).toContain("replayed-42");
    expect(events.some((e) => e.code === "i")).toBe(true);

    const page = await browser.newPage();
    await page.setViewportSize({ width: 900, height: 520 });
    await recordTerminalWrites(page);
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(`${h.url}/viewer/?recording=${recordingId}&speed=2`);
    await page.locator("#token").fill(token);
    const started = Date.now();
    await page.locator("#connect-button").click();
    await expect.poll(() => page.locator("body").getAttribute("data-replay"), { timeout: 20_000 }).toBe("ended");
    const elapsedMs = Date.now() - started;
    const written = await page.evaluate(() => (globalThis as unknown as { written?: string[] }).written ?? []);
    // Every output byte, in the recorded order, and nothing else (no keystrokes).
    expect(written.join("")).toBe(recordedOutput);
    // At 2x, the replay takes about half the recording's output span.
    const spanMs = (output[output.length - 1].time - output[0].time) * 1000;
    expect(elapsedMs).toBeGreaterThanOrEqual(spanMs / 2 - 100);
    await expect.poll(() => terminalRows(page.mainFrame()), { timeout: 5_000 }).toContain("replayed-42");
    expect(await page.locator("#clock").textContent()).toMatch(/^(\d+\.\d) \/ \1 s$/);
    // The token went in a header only: no URL the page asked for carries it.
    expect(requests.some((u) => u.includes(token))).toBe(false);

    const artifacts = process.env.GURU_TEST_ARTIFACTS ?? join(tmpdir(), "guru-test-artifacts");
    await mkdir(artifacts, { recursive: true });
    const shot = join(artifacts, "viewer-replay.png");
    await page.screenshot({ path: shot });
    expect(existsSync(shot)).toBe(true);
    if (process.env.GURU_VIEWER_REPLAY_SCREENSHOT) await copyFile(shot, process.env.GURU_VIEWER_REPLAY_SCREENSHOT);
    await page.close();
  });

  it("embedded, refuses to replay with a viewer token: error, then closed", async () => {
    const { recordings } = await h.admin.recordings.listRecordings({ sessionId, allTechnicians: true });
    viewerUrl = `${h.url}/viewer/?recording=${recordings[0].recordingId}`;
    mint = async (origin) => (await partner.mintViewerToken({ sessionId, origin })).token;
    const page = await browser.newPage();
    await page.goto(`${allowed.origin}/`);
    await expect.poll(() => viewerEvents(page), { timeout: 15_000 }).toEqual(["ready", "error", "closed"]);
    const frame = await viewerFrame(page);
    // The refusal's message, as the terminal wraps it.
    await expect.poll(async () => (await terminalRows(frame)).join(""), { timeout: 5_000 }).toMatch(/needs a technician token/);
    await page.close();
  });
});
