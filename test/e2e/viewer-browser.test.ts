// The web viewer in a real browser (Debian's chromium, headless, driven by
// playwright-core): a partner page on another origin embeds it, hands it a
// viewer token with postMessage, hears its lifecycle events, and types into a
// real shell on a real agent; a page on an origin no key allows cannot frame it.
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Frame, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionMode } from "../../gen/guru/integration/v1/sessions_pb.js";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { startHostPage, type HostPage } from "../support/host-page.ts";
import { createIntegrationClient } from "../support/integration-client.ts";
import { terminalAgentEnv } from "../support/terminal-helpers.ts";

const chromiumPath = "/usr/bin/chromium";

async function terminalRows(frame: Frame): Promise<string[]> {
  return frame.locator(".xterm-rows > div").evaluateAll((rows) => rows.map((r) => (r.textContent ?? "").trimEnd()));
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

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) throw new Error(`chromium is not installed at ${chromiumPath}: run \`apt-get install -y chromium\` (.ci/run does)`);
    h = await startTestServer({ kind: "pglite" });
    let mint: (origin: string) => Promise<string> = () => Promise.reject(new Error("no partner yet"));
    allowed = await startHostPage({ viewerUrl: () => viewerUrl, mintToken: (origin) => mint(origin) });
    blocked = await startHostPage({ viewerUrl: () => viewerUrl, mintToken: (origin) => mint(origin) });
    const { key } = await h.admin.admin.createIntegrationKey({ name: "partner", allowedOrigins: [allowed.origin] });
    const partner = createIntegrationClient(h.url, key);
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "pc-viewer" });
    await (await h.spawnAgent({ agentId, agentKey, env: await terminalAgentEnv(h) })).waitOnline();
    const started = await partner.startRemoteControl({ agent: { ref: { case: "externalId", value: "pc-viewer" } }, mode: SessionMode.UNATTENDED });
    viewerUrl = started.viewerUrl;
    const sessionId = started.session!.sessionId;
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
});
