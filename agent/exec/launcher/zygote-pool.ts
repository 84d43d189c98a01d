// The agent's side of zygotes (zygote-spec.js): which prepared output sockets
// have a zygote waiting on them, in which environment, and asking the
// launcher for more (when, quiet-refill.ts decides). The launch itself is
// handed to the zygote by launcher.ts.
import { isExecutableFile, zygoteEnvKey, zygoteShell, zygoteSpec } from "./zygote-spec.js";

/** Zygotes kept waiting, each on one prepared set of sockets. */
const target = 2;
/** Zygotes that died before any launch (a broken /bin/sh): past this many, launches are all spawned. */
const maxUnexpectedDeaths = 3;

export interface ZygoteHandOff {
  pid: number;
  /** What to write to the zygote's stdin. */
  spec: string;
}

interface Slot {
  key: string;
  /** Known once the launcher answered. */
  pid?: number;
}

export function createZygotePool(deps: {
  /** Asks the launcher for a zygote on prepared `id`, in `env`. */
  request(id: number, env: Record<string, string>): void;
  /** Prepared ids, in the order launches take them. */
  preparedIds(): number[];
  /** A zygote died waiting: its place wants filling. */
  onDeath(): void;
}) {
  const slots = new Map<number, Slot>();
  let disabled = !isExecutableFile(zygoteShell);
  let unexpectedDeaths = 0;
  /** The environment of the last launch a zygote could serve. */
  let expected: { env: Record<string, string>; key: string } | undefined;

  /** Asks for zygotes on the prepared sockets that have none, up to the target. */
  function refill(): void {
    if (disabled || expected === undefined) return;
    const ids = deps.preparedIds();
    let live = ids.filter((id) => slots.get(id)?.key === expected?.key).length;
    for (const id of ids) {
      if (live >= target) break;
      // One of another environment stays until its id is spawned (which ends it).
      if (slots.has(id)) continue;
      slots.set(id, { key: expected.key });
      deps.request(id, expected.env);
      live++;
    }
  }

  return {
    /** Whether prepared sockets need a third one, the zygote's stdin. */
    get enabled() {
      return !disabled;
    },

    /** For a launch on prepared `id`: the zygote to hand it to, or undefined (spawn it). The slot is used up either way. */
    take(id: number, file: string, args: string[], options: { cwd: string; env: Record<string, string>; detached: boolean }): ZygoteHandOff | undefined {
      const key = zygoteEnvKey(options.env);
      if (key !== undefined) expected = { env: options.env, key };
      const slot = slots.get(id);
      slots.delete(id);
      if (slot?.pid === undefined || slot.key !== key || !options.detached) return undefined;
      const spec = zygoteSpec(file, args, options.cwd);
      if (spec === undefined || !isExecutableFile(file)) return undefined;
      return { pid: slot.pid, spec };
    },

    /** The launcher started the zygote asked for. */
    started(id: number, pid: number): void {
      const slot = slots.get(id);
      if (slot !== undefined) slot.pid = pid;
    },

    /** The launcher could not start one: launches are spawned from now on. */
    failed(id: number): void {
      slots.delete(id);
      disabled = true;
    },

    /** A zygote died before any launch; false when `id` had none waiting. */
    died(id: number): boolean {
      if (!slots.delete(id)) return false;
      if (++unexpectedDeaths >= maxUnexpectedDeaths) disabled = true;
      deps.onDeath();
      return true;
    },

    /** The launcher is gone, and with it every zygote. */
    clear(): void {
      slots.clear();
    },

    refill,
  };
}

export type ZygotePool = ReturnType<typeof createZygotePool>;
