// When the launcher's spare parts (prepared output sockets, zygotes) are
// replaced: not while a command is starting or ending, since making them
// (socket pairs, a fork in the launcher) costs CPU the command's answer needs
// on a busy machine, but once nothing happened for a few milliseconds.

/**
 * Measured with zygotes replaced at once, or this long after the last command
 * ended: RunCommand("true") p50 10.7 ms without zygotes, no better with them
 * replaced at once, 9.7 ms with them replaced this late.
 */
const afterEndMs = 8;
/** This long after a launch even while commands still run (long ones must not hold it back). */
const afterLaunchMs = 50;

export interface QuietRefill {
  /** A launch arrived. */
  commandStarted(): void;
  /** Its exit (or its failure) came back. */
  commandEnded(): void;
  /** Something else used a spare part up (a zygote died): refill once quiet. */
  soon(): void;
  stop(): void;
}

export function createQuietRefill(refill: () => void): QuietRefill {
  let running = 0;
  let quietTimer: NodeJS.Timeout | undefined;
  let launchTimer: NodeJS.Timeout | undefined;

  function run(evenIfBusy: boolean): void {
    if (running > 0 && !evenIfBusy) return;
    clearTimeout(quietTimer);
    clearTimeout(launchTimer);
    quietTimer = launchTimer = undefined;
    refill();
  }

  /** Each call starts the wait again. */
  function soon(): void {
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => run(false), afterEndMs).unref();
  }

  return {
    commandStarted() {
      running++;
      launchTimer ??= setTimeout(() => run(true), afterLaunchMs).unref();
    },
    commandEnded() {
      running--;
      soon();
    },
    soon,
    stop() {
      clearTimeout(quietTimer);
      clearTimeout(launchTimer);
    },
  };
}
