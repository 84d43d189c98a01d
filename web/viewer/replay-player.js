// Plays an asciicast v2 recording into a terminal: output events at their
// timestamps (divided by the speed; pauses longer than the idle limit are
// shortened to it, as asciinema's --idle-time-limit does), resize events as
// resizes, markers as notes. Input events are the technician's keystrokes:
// never written, since their echo is already in the output. No DOM here: the
// viewer gives it a sink and a clock, and so can a test.

/** The recording's header and events; throws an Error naming the bad line. */
export function parseCast(text) {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0) throw new Error("the recording is empty");
  let header;
  try {
    header = JSON.parse(lines[0]);
  } catch {
    throw new Error("line 1 of the recording is not an asciicast header");
  }
  if (header === null || typeof header !== "object" || header.version !== 2) throw new Error("only asciicast version 2 can be played");
  const events = lines.slice(1).map((line, i) => {
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`line ${i + 2} of the recording is not JSON`);
    }
    if (!Array.isArray(value) || typeof value[0] !== "number" || typeof value[1] !== "string" || typeof value[2] !== "string") {
      throw new Error(`line ${i + 2} of the recording is not an asciicast event`);
    }
    return { time: value[0], code: value[1], data: value[2] };
  });
  return { width: header.width || 80, height: header.height || 24, events };
}

const browserClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * sink: { output(text), resize(columns, rows), marker(text), reset() };
 * onState(state) after every change: { playing, ended, position, duration, speed, idleLimit } (seconds).
 */
export function createPlayer({ events, sink, onState = () => {}, clock = browserClock, speed = 1, idleLimit = Number.POSITIVE_INFINITY }) {
  /** Each event's time in the played timeline (idle limit applied, before the speed). */
  let at = [];
  let next = 0;
  // The position in the played timeline was `position` at clock time `since`.
  let position = 0;
  let since = 0;
  let playing = false;
  let timer;

  function layOut() {
    at = [];
    let previous = 0;
    let t = 0;
    for (const event of events) {
      t += Math.min(Math.max(0, event.time - previous), idleLimit);
      previous = Math.max(previous, event.time);
      at.push(t);
    }
  }

  const duration = () => (at.length === 0 ? 0 : at[at.length - 1]);
  const now = () => (playing ? position + ((clock.now() - since) / 1000) * speed : position);

  function state() {
    return { playing, ended: next >= events.length, position: Math.min(now(), duration()), duration: duration(), speed, idleLimit };
  }

  /** Applies the due events; consecutive output goes to the terminal as one write, in order. */
  function applyDue(t) {
    let text = "";
    // A microsecond of slack: the clock's sums round, and a timer must never be set for no time at all.
    for (; next < events.length && at[next] <= t + 1e-6; next++) {
      const { code, data } = events[next];
      if (code === "o") {
        text += data;
        continue;
      }
      if (code === "r") {
        const size = /^(\d+)x(\d+)$/.exec(data);
        if (size === null) continue;
        if (text !== "") sink.output(text);
        text = "";
        sink.resize(Number(size[1]), Number(size[2]));
      } else if (code === "m") {
        if (text !== "") sink.output(text);
        text = "";
        sink.marker(data);
      }
      // "i": input, never written.
    }
    if (text !== "") sink.output(text);
  }

  function tick() {
    timer = undefined;
    if (!playing) return;
    const t = now();
    applyDue(t);
    if (next >= events.length) {
      playing = false;
      position = duration();
    } else {
      timer = clock.setTimeout(tick, ((at[next] - t) * 1000) / speed);
    }
    onState(state());
  }

  function rebase() {
    position = now();
    since = clock.now();
  }

  function play() {
    if (playing) return;
    if (next >= events.length) {
      // From the start again, on a clean terminal.
      sink.reset();
      next = 0;
      position = 0;
    }
    playing = true;
    since = clock.now();
    tick();
  }

  function pause() {
    if (!playing) return;
    rebase();
    playing = false;
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    onState(state());
  }

  /** New timing from the current position on: the next event is due sooner or later. */
  function retime() {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    if (playing) tick();
    else onState(state());
  }

  layOut();
  return {
    play,
    pause,
    toggle: () => (playing ? pause() : play()),
    setSpeed(value) {
      if (!(value > 0)) throw new Error("the speed must be a positive number");
      rebase();
      speed = value;
      retime();
    },
    setIdleLimit(seconds) {
      if (!(seconds > 0)) throw new Error("the idle limit must be a positive number of seconds");
      rebase();
      // Keep the place: the position in the new timeline is the last played event's time there.
      idleLimit = seconds;
      layOut();
      position = next === 0 ? 0 : at[next - 1];
      retime();
    },
    state,
  };
}
