// A partner's page for browser tests: a tiny HTTP server on its own port (so
// its own origin) that frames the viewer with ?embed=1, mints the viewer token
// server-side when the viewer says it is ready, hands it over with
// postMessage, and keeps the viewer's lifecycle events in window.viewerEvents.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface HostPage {
  origin: string;
  close(): Promise<void>;
}

const hostScript = `
const frame = document.getElementById("viewer");
const viewerOrigin = new URL(frame.src).origin;
window.viewerEvents = [];
window.addEventListener("message", async (event) => {
  if (event.origin !== viewerOrigin || event.data?.source !== "guru-viewer") return;
  window.viewerEvents.push(event.data.type);
  if (event.data.type === "ready") {
    const { token } = await (await fetch("/token", { method: "POST" })).json();
    frame.contentWindow.postMessage({ type: "guru-viewer-token", token }, viewerOrigin);
  }
});
`;

/** mintToken runs on the partner's server, with its integration key, for this page's origin. */
export async function startHostPage(options: { viewerUrl: () => string; mintToken: (origin: string) => Promise<string> }): Promise<HostPage> {
  let origin = "";
  const server = http.createServer((req, res) => {
    if (req.url === "/") {
      const src = `${options.viewerUrl()}&embed=1`.replaceAll("&", "&amp;").replaceAll('"', "&quot;");
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><html><head><title>partner</title></head><body><h1>Partner RMM</h1>
<iframe id="viewer" src="${src}" width="820" height="420"></iframe>
<script src="/host.js"></script></body></html>`);
    } else if (req.url === "/host.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(hostScript);
    } else if (req.url === "/token" && req.method === "POST") {
      options.mintToken(origin).then(
        (token) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ token }));
        },
        (err: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(err.message);
        },
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
