// The agent's side of zygotes (zygote-spec.js): which prepared sets of
// sockets have a zygote waiting on them, in which environment, and asking
// the launcher for more (when, quiet-refill.ts decides). The launch itself is
// handed to the zygote by launcher.ts.
//
// The launcher keeps no copy of a zygote's sockets (so the command's output
// ends when the command's holders close it, not when the launcher gets round
// to it): a set with a zygote is the zygote's. A launch it cannot take goes
// to a set without one, and a set whose zygote died or waits in an
// environment no longer asked for is dropped.
import { isExecutableFile, zygoteEnvKey, zygoteShell, zygoteSpec } from "./zygote-spec.js";

/** Zygotes kept waiting, each on one prepared set of sockets. */
const target = 2;
/** Zygotes that died before any launch (a broken /bin/sh): past this many, launches are all spawned. */
const maxUnexpectedDeaths = 3;

/** A launch a zygote can take: the environment it needs and what to write to it. */
export interface ZygoteLaunch {
  key: string;
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
  /** A set of sockets became useless (its zygote died): drop it. */
  drop(id: number): void;
}) {
  const slots = new Map<number, Slot>();
  let disabled = !isExecutableFile(zygoteShell);
  let unexpectedDeaths = 0;
  /** The environment of the last launch a zygote could serve. */
  let expected: { env: Record<string, string>; key: string } | undefined;

  return {
    /** Whether prepared sockets need a third one, the zygote's stdin. */
    get enabled() {
      return !disabled;
    },

    /** What a zygote would need to take this launch, or undefined (spawn it). Notes the environment for the next zygotes. */
    fit(file: string, args: string[], options: { cwd: string; env: Record<string, string>; detached: boolean }): ZygoteLaunch | undefined {
      const key = zygoteEnvKey(options.env);
      if (key === undefined) return undefined;
      expected = { env: options.env, key };
      const spec = options.detached ? zygoteSpec(file, args, options.cwd) : undefined;
      if (spec === undefined || !isExecutableFile(file)) return undefined;
      return { key, spec };
    },

    /** The pid of the zygote waiting on `id` in the environment `key`, if there is one ready. */
    ready(id: number, key: string): number | undefined {
      const slot = slots.get(id);
      return slot?.key === key ? slot.pid : undefined;
    },

    /** True when `id`'s sockets are a zygote's (waiting, or asked for). */
    reserved: (id: number) => slots.has(id),

    /** True when `id` has a zygote of an environment no longer asked for. */
    stale: (id: number) => expected !== undefined && slots.has(id) && slots.get(id)?.key !== expected.key,

    /** `id` was launched, or dropped. */
    release(id: number): void {
      slots.delete(id);
    },

    /** Asks for zygotes on `ids` (prepared sets without one), up to the target. */
    refill(ids: number[]): void {
      if (disabled || expected === undefined) return;
      let live = [...slots.values()].filter((slot) => slot.key === expected?.key).length;
      for (const id of ids) {
        if (live >= target) break;
        if (slots.has(id)) continue;
        slots.set(id, { key: expected.key });
        deps.request(id, expected.env);
        live++;
      }
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

    /** A zygote died before any launch (its sockets with it); false when `id` had none waiting. */
    died(id: number): boolean {
      if (!slots.delete(id)) return false;
      if (++unexpectedDeaths >= maxUnexpectedDeaths) disabled = true;
      deps.drop(id);
      return true;
    },

    /** The launcher is gone, and with it every zygote. */
    clear(): void {
      slots.clear();
    },
  };
}

export type ZygotePool = ReturnType<typeof createZygotePool>;
