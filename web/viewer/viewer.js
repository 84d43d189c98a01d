// The GuruTunnel web viewer: xterm.js bridged to a terminal on an agent over
// the terminal WebSocket (/terminal, subprotocol guru.terminal.v1), or, with
// ?recording=ID, a replay of a terminal's recording (GET /recordings/ID). The
// token travels only in the socket's first message or the request's
// Authorization header, never in a URL: an embedding partner page sends it
// with postMessage; standalone, a technician pastes it into the form.
import { Terminal } from "./vendor/xterm.mjs";
import { FitAddon } from "./vendor/addon-fit.mjs";
import { createPlayer, parseCast } from "./replay-player.js";

const params = new URLSearchParams(location.search);
const embedded = params.get("embed") === "1" && window.parent !== window;
const recordingId = params.get("recording");
const statusEl = document.getElementById("status");
const encoder = new TextEncoder();

const term = new Terminal({
  cursorBlink: recordingId === null,
  disableStdin: recordingId !== null,
  fontSize: 14,
  scrollback: 5000,
  theme: { background: "#101418" },
});
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal"));
// A replay keeps the recorded terminal's size; a live terminal takes the page's.
if (recordingId === null) {
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
}

// The origin told about the terminal: none until a token arrives, then the one
// it came from (the server confirms it is the origin the token was minted for).
let parentOrigin = null;
// `denied` or `error` is told at most once; `closed` is always the last event.
let failed = false;
let closed = false;

function post(type, detail = {}) {
  if (!embedded || parentOrigin === null || closed) return;
  window.parent.postMessage({ source: "guru-viewer", type, ...detail }, parentOrigin);
}

function status(text) {
  statusEl.textContent = text;
}

function fail(type, detail) {
  if (failed) return;
  failed = true;
  post(type, detail);
}

function close(detail) {
  post("closed", detail);
  closed = true;
}

/** A refusal from the server, in the terminal and to the embedding page. */
function refused(code, text) {
  status(`${code}: ${text}`);
  term.write(`\r\n\x1b[31m${text}\x1b[0m\r\n`);
  fail(code === "permission_denied" ? "denied" : "error", { code, message: text });
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
        closed = true;
        ws.close();
        return;
      }
      status(`connected to agent ${opened.agentId}`);
      post("connected", { terminalId: opened.terminalId, sessionId: opened.sessionId, agentId: opened.agentId });
      term.focus();
    } else if (message.exit) {
      status(`ended (exit code ${message.exit.exitCode ?? 0})`);
      close({ exitCode: message.exit.exitCode ?? 0, reason: message.exit.reason ?? "" });
    } else if (message.error) {
      const { code = "unknown", message: text = "" } = message.error;
      refused(code, text);
    }
  });
  ws.addEventListener("close", () => {
    if (!closed && !failed) status("disconnected");
    close({});
  });
  ws.addEventListener("error", () => fail("error", { code: "unavailable", message: "the terminal socket failed" }));
  term.onData((data) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
  });
  term.onResize(({ cols, rows }) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: { columns: cols, rows } }));
  });
}

/** Picks `value` in a select, adding it as an option when the list lacks it (a value from the URL). */
function choose(select, value, label) {
  if (![...select.options].some((o) => o.value === value)) select.add(new Option(label, value));
  select.value = value;
}

async function replay(token) {
  status("loading the recording…");
  let res;
  try {
    res = await fetch(`/recordings/${encodeURIComponent(recordingId)}`, {
      headers: { authorization: `Bearer ${token}` },
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    refused("unavailable", "the recording could not be fetched");
    close({});
    return;
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    refused(body.code ?? "unknown", body.message ?? `the server answered ${res.status}`);
    close({});
    return;
  }
  let cast;
  try {
    cast = parseCast(await res.text());
  } catch (err) {
    refused("data_loss", err.message);
    close({});
    return;
  }
  term.resize(cast.width, cast.height);
  post("connected", { recordingId });

  const playButton = document.getElementById("play");
  const speedSelect = document.getElementById("speed");
  const idleSelect = document.getElementById("idle");
  const clock = document.getElementById("clock");
  const show = (state) => {
    playButton.textContent = state.playing ? "Pause" : state.ended ? "Replay" : "Play";
    clock.textContent = `${state.position.toFixed(1)} / ${state.duration.toFixed(1)} s`;
    document.body.dataset.replay = state.playing ? "playing" : state.ended ? "ended" : "paused";
    status(`recording ${recordingId}: ${state.playing ? `playing at ${state.speed}×` : state.ended ? "ended" : "paused"}`);
  };
  const player = createPlayer({
    events: cast.events,
    sink: {
      output: (text) => term.write(text),
      resize: (columns, rows) => term.resize(columns, rows),
      marker: (text) => term.write(`\r\n\x1b[2m[${text}]\x1b[0m\r\n`),
      reset: () => term.reset(),
    },
    onState: show,
    speed: Number(speedSelect.value),
    idleLimit: idleSelect.value === "" ? Number.POSITIVE_INFINITY : Number(idleSelect.value),
  });
  playButton.disabled = false;
  playButton.addEventListener("click", () => player.toggle());
  speedSelect.addEventListener("change", () => player.setSpeed(Number(speedSelect.value)));
  idleSelect.addEventListener("change", () => player.setIdleLimit(idleSelect.value === "" ? Number.POSITIVE_INFINITY : Number(idleSelect.value)));
  document.addEventListener("keydown", (event) => {
    if (event.key === " " && event.target === document.body) {
      event.preventDefault();
      player.toggle();
    }
  });
  // The clock moves between events too.
  setInterval(() => show(player.state()), 250);
  player.play();
}

/** A replay sends whatever token it got to the recording route, which takes technician tokens only. */
function start(token, { viewerToken, sessionId }) {
  if (recordingId !== null) replay(token);
  else if (viewerToken) connect({ viewerToken: token, viewerOrigin: parentOrigin ?? "", sessionId });
  else connect({ token, sessionId });
}

if (recordingId !== null) {
  document.getElementById("replay").hidden = false;
  const speed = Number(params.get("speed"));
  if (speed > 0) choose(document.getElementById("speed"), String(speed), `${speed}×`);
  const idle = Number(params.get("idle"));
  if (idle > 0) choose(document.getElementById("idle"), String(idle), `${idle} s`);
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
    start(data.token, { viewerToken: true, sessionId: params.get("session") ?? "" });
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
  if (recordingId !== null) {
    // A replay takes a technician token and nothing else.
    document.getElementById("session-field").hidden = true;
    document.getElementById("viewer-token-field").hidden = true;
    document.getElementById("token").placeholder = "technician token";
    document.getElementById("connect-button").textContent = "Replay";
    status(`recording ${recordingId}`);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    form.hidden = true;
    const sessionId = document.getElementById("session").value.trim();
    start(token, { viewerToken: document.getElementById("is-viewer-token").checked, sessionId });
  });
}
