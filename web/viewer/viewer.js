// The GuruTunnel web viewer: xterm.js bridged to a terminal on an agent over
// the terminal WebSocket (/terminal, subprotocol guru.terminal.v1). The token
// travels only in the socket's first message, never in a URL: an embedding
// partner page sends a viewer token with postMessage; standalone, a
// technician pastes a token into the form.
import { Terminal } from "./vendor/xterm.mjs";
import { FitAddon } from "./vendor/addon-fit.mjs";

const params = new URLSearchParams(location.search);
const embedded = params.get("embed") === "1" && window.parent !== window;
const statusEl = document.getElementById("status");
const encoder = new TextEncoder();

const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, theme: { background: "#101418" } });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal"));
fit.fit();
window.addEventListener("resize", () => fit.fit());

// The origin told about the terminal: none until a token arrives, then the one
// it came from (the server confirms it is the origin the token was minted for).
let parentOrigin = null;
let finished = false;

function post(type, detail = {}) {
  if (!embedded || parentOrigin === null) return;
  window.parent.postMessage({ source: "guru-viewer", type, ...detail }, parentOrigin);
}

function status(text) {
  statusEl.textContent = text;
}

function finish(type, detail) {
  if (finished) return;
  finished = true;
  post(type, detail);
}

function connect(open) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/terminal`, "guru.terminal.v1");
  ws.binaryType = "arraybuffer";
  status("connecting…");
  ws.addEventListener("open", () => {
    ws.send(JSON.stringify({ open: { ...open, columns: term.cols, rows: term.rows } }));
  });
  ws.addEventListener("message", (event) => {
    if (typeof event.data !== "string") {
      term.write(new Uint8Array(event.data));
      return;
    }
    const message = JSON.parse(event.data);
    if (message.waiting) {
      status("waiting for the person at the endpoint to allow the session…");
      post("consent-pending", { message: message.waiting.message ?? "" });
    } else if (message.opened) {
      const opened = message.opened;
      if (embedded && opened.origin !== parentOrigin) {
        // Only the origin the token was minted for hears about this terminal.
        finished = true;
        ws.close();
        return;
      }
      status(`connected to agent ${opened.agentId}`);
      post("connected", { terminalId: opened.terminalId, sessionId: opened.sessionId, agentId: opened.agentId });
      term.focus();
    } else if (message.exit) {
      status(`ended (exit code ${message.exit.exitCode ?? 0})`);
      finish("closed", { exitCode: message.exit.exitCode ?? 0, reason: message.exit.reason ?? "" });
    } else if (message.error) {
      const { code = "unknown", message: text = "" } = message.error;
      status(`${code}: ${text}`);
      term.write(`\r\n\x1b[31m${text}\x1b[0m\r\n`);
      if (code === "permission_denied") finish("denied", { code, message: text });
      else finish("error", { code, message: text });
    }
  });
  ws.addEventListener("close", () => {
    if (!finished) status("disconnected");
    finish("closed", {});
  });
  ws.addEventListener("error", () => finish("error", { code: "unavailable", message: "the terminal socket failed" }));
  term.onData((data) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
  });
  term.onResize(({ cols, rows }) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: { columns: cols, rows } }));
  });
}

if (embedded) {
  document.body.classList.add("embed");
  let started = false;
  window.addEventListener("message", (event) => {
    if (started || event.source !== window.parent) return;
    const data = event.data;
    if (data === null || typeof data !== "object" || data.type !== "guru-viewer-token" || typeof data.token !== "string") return;
    started = true;
    parentOrigin = event.origin;
    connect({ viewerToken: data.token, viewerOrigin: event.origin, sessionId: params.get("session") ?? "" });
  });
  // Before a token nobody is told anything but that the viewer is ready; the
  // browser names the framing page, which the frame-ancestors policy limits to
  // allowed origins.
  const framer = location.ancestorOrigins?.[0] ?? (document.referrer ? new URL(document.referrer).origin : null);
  if (framer) window.parent.postMessage({ source: "guru-viewer", type: "ready" }, framer);
} else {
  const form = document.getElementById("connect");
  form.hidden = false;
  document.getElementById("session").value = params.get("session") ?? "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    const sessionId = document.getElementById("session").value.trim();
    const isViewerToken = document.getElementById("is-viewer-token").checked;
    form.hidden = true;
    connect(isViewerToken ? { viewerToken: token, sessionId } : { token, sessionId });
  });
}
