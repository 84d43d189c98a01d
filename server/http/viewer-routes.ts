// The web viewer (`/viewer/`): a page, its script and xterm.js served from the
// installed packages (never a CDN), with the only framing this server allows.
// Every other route is unframeable (securityHeaders); the viewer may be framed
// by the origins the active integration keys allow (the page loads before its
// token, so it cannot know which key will mint it) and by a configured list
// for technicians' own tools.
import { readFileSync } from "node:fs";
import type http from "node:http";
import type http2 from "node:http2";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { normalizeOrigin } from "../auth/viewer-tokens.ts";

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

/** Sent by every route but the viewer's page: nothing frames it, nothing runs in it. */
const defaultSecurityHeaders: Record<string, string> = {
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export function setDefaultSecurityHeaders(res: Res): void {
  for (const [name, value] of Object.entries(defaultSecurityHeaders)) (res as http.ServerResponse).setHeader(name, value);
}

/** The viewer page's policy: scripts only from this server (no inline script), sockets only to it. */
function viewerContentSecurityPolicy(frameAncestors: string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    // xterm.js's renderer adds <style> elements of its own for the theme and cursor.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors.length > 0 ? frameAncestors.join(" ") : "'none'"}`,
  ].join("; ");
}

interface Asset {
  body: Buffer;
  contentType: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const viewerDir = join(here, "..", "..", "web", "viewer");
const require = createRequire(import.meta.url);

function packageFile(pkg: string, file: string): string {
  return join(dirname(require.resolve(`${pkg}/package.json`)), file);
}

/** Read once at start: a missing file fails the server's start, not a viewer's page load. */
function loadAssets(): Map<string, Asset> {
  const js = "text/javascript; charset=utf-8";
  const css = "text/css; charset=utf-8";
  const files: [string, string, string][] = [
    ["/viewer/", join(viewerDir, "index.html"), "text/html; charset=utf-8"],
    ["/viewer/viewer.js", join(viewerDir, "viewer.js"), js],
    ["/viewer/replay-player.js", join(viewerDir, "replay-player.js"), js],
    ["/viewer/viewer.css", join(viewerDir, "viewer.css"), css],
    ["/viewer/vendor/xterm.mjs", packageFile("@xterm/xterm", "lib/xterm.mjs"), js],
    ["/viewer/vendor/xterm.css", packageFile("@xterm/xterm", "css/xterm.css"), css],
    ["/viewer/vendor/addon-fit.mjs", packageFile("@xterm/addon-fit", "lib/addon-fit.mjs"), js],
  ];
  return new Map(files.map(([path, file, contentType]) => [path, { body: readFileSync(file), contentType }]));
}

export interface ViewerRoutesOptions {
  /** Allowed origins of the integration keys that are not revoked. */
  keyOrigins(): Promise<string[]>;
  /** Extra origins that may frame the viewer (GURU_VIEWER_FRAME_ANCESTORS). */
  frameAncestors: string[];
}

export function createViewerRoutes(options: ViewerRoutesOptions) {
  const assets = loadAssets();
  const configured = options.frameAncestors.map((o) => {
    const origin = normalizeOrigin(o);
    if (origin === undefined) throw new Error(`GURU_VIEWER_FRAME_ANCESTORS: "${o}" is not a web origin such as https://tools.example.com`);
    return origin;
  });

  async function frameAncestors(): Promise<string[]> {
    const fromKeys = (await options.keyOrigins()).map(normalizeOrigin).filter((o): o is string => o !== undefined);
    return [...new Set([...fromKeys, ...configured])].sort();
  }

  return async function handle(req: Req, res: Res): Promise<boolean> {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/viewer" && !path.startsWith("/viewer/")) return false;
    const out = res as http.ServerResponse;
    if (req.method !== "GET" && req.method !== "HEAD") {
      out.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      out.end("the viewer answers GET\n");
      return true;
    }
    if (path === "/viewer") {
      const query = (req.url ?? "").slice(path.length);
      out.writeHead(308, { location: `/viewer/${query}` });
      out.end();
      return true;
    }
    const asset = assets.get(path);
    if (asset === undefined) {
      out.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      out.end("not found\n");
      return true;
    }
    if (path === "/viewer/") {
      // Framing is the page's whole point: its own policy replaces the default one.
      out.removeHeader("x-frame-options");
      out.setHeader("content-security-policy", viewerContentSecurityPolicy(await frameAncestors()));
      out.setHeader("cache-control", "no-store");
    } else {
      out.setHeader("cache-control", "public, max-age=300");
    }
    out.writeHead(200, { "content-type": asset.contentType, "content-length": asset.body.byteLength });
    out.end(req.method === "HEAD" ? undefined : asset.body);
    return true;
  };
}
