// The replay player on a clock the test moves: output at its timestamps,
// divided by the speed, pauses capped by the idle limit, resizes applied in
// order, keystrokes never written, pause and resume where it stopped.
import { expect, it } from "vitest";
import { createPlayer, parseCast, type PlayerClock } from "./replay-player.js";

/** A clock whose time moves only when the test says, firing due timers in order. */
function manualClock() {
  let now = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 1;
  const clock: PlayerClock = {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout(id) {
      timers = timers.filter((t) => t.id !== id);
    },
  };
  function advance(ms: number) {
    const until = now + ms;
    for (;;) {
      // Timers a rounding error past `until` are due too: 11.3 s - 11.2 s is not quite 100 ms.
      const due = timers.filter((t) => t.at <= until + 1e-6).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      timers = timers.filter((t) => t !== due);
      now = Math.max(now, due.at);
      due.fn();
    }
    now = until;
  }
  return { clock, advance };
}

const cast = [
  JSON.stringify({ version: 2, width: 100, height: 30, timestamp: 0 }),
  JSON.stringify([0.5, "o", "$ "]),
  JSON.stringify([1.0, "i", "ls\r"]),
  JSON.stringify([1.0, "o", "ls\r\n"]),
  JSON.stringify([1.2, "r", "120x40"]),
  JSON.stringify([11.2, "o", "after a long pause\r\n"]),
  JSON.stringify([11.3, "m", "output past 10 bytes is not recorded"]),
  "",
].join("\n");

function harness(options: { speed?: number; idleLimit?: number } = {}) {
  const { clock, advance } = manualClock();
  const log: string[] = [];
  const sink = {
    output: (text: string) => log.push(`o:${text}`),
    resize: (c: number, r: number) => log.push(`r:${c}x${r}`),
    marker: (text: string) => log.push(`m:${text}`),
    reset: () => log.push("reset"),
  };
  const { width, height, events } = parseCast(cast);
  expect([width, height]).toEqual([100, 30]);
  const player = createPlayer({ events, sink, clock, ...options });
  return { player, log, advance };
}

it("writes output at its timestamps, applies resizes in order, never writes input, and ends", () => {
  const { player, log, advance } = harness();
  player.play();
  expect(log).toEqual([]);
  advance(499);
  expect(log).toEqual([]);
  advance(1);
  expect(log).toEqual(["o:$ "]);
  advance(700);
  expect(log).toEqual(["o:$ ", "o:ls\r\n", "r:120x40"]);
  advance(9_999);
  expect(log).toHaveLength(3);
  advance(101);
  expect(log.slice(3)).toEqual(["o:after a long pause\r\n", "m:output past 10 bytes is not recorded"]);
  expect(player.state()).toMatchObject({ playing: false, ended: true, duration: 11.3 });
  expect(log.join("")).not.toContain("ls\r\r");
  // Play after the end starts over on a clean terminal.
  player.play();
  advance(500);
  expect(log.slice(5)).toEqual(["reset", "o:$ "]);
});

it("divides the timing by the speed, caps idle pauses, and changes both while playing", () => {
  const { player, log, advance } = harness({ speed: 2, idleLimit: 1 });
  expect(player.state().duration).toBeCloseTo(2.3);
  player.play();
  advance(250);
  expect(log).toEqual(["o:$ "]);
  advance(350);
  expect(log).toHaveLength(3);
  // The ten-second pause is one second: half a second at 2x, a quarter at 4x.
  player.setSpeed(4);
  advance(249);
  expect(log).toHaveLength(3);
  advance(1);
  expect(log[3]).toBe("o:after a long pause\r\n");
  expect(player.state().position).toBeCloseTo(2.2);
});

it("pauses where it is and resumes from there", () => {
  const { player, log, advance } = harness();
  player.play();
  advance(600);
  player.pause();
  expect(player.state()).toMatchObject({ playing: false, ended: false });
  expect(player.state().position).toBeCloseTo(0.6);
  advance(60_000);
  expect(log).toEqual(["o:$ "]);
  player.toggle();
  advance(399);
  expect(log).toEqual(["o:$ "]);
  advance(1);
  expect(log).toEqual(["o:$ ", "o:ls\r\n"]);
  // An idle limit set later shortens the pause still ahead.
  player.setIdleLimit(2);
  advance(2_200);
  expect(log).toContain("o:after a long pause\r\n");
});

it("refuses a file that is not asciicast v2, naming the line", () => {
  expect(() => parseCast("")).toThrow(/empty/);
  expect(() => parseCast('{"version":1}')).toThrow(/version 2/);
  expect(() => parseCast(`${JSON.stringify({ version: 2 })}\n[1, "o"]`)).toThrow(/line 2/);
});
