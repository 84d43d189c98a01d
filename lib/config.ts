// Configuration from flags, GURU_* environment variables and defaults, in that
// order, validated with zod. A bad value stops start-up with a message naming
// the variable (or flag) and what was expected.
import { z } from "zod";
import { GuruError } from "./errors.ts";

export interface OptionSpec<T> {
  /** Environment variable, e.g. GURU_PORT. */
  env?: string;
  /** Long flag without dashes, e.g. "port". */
  flag?: string;
  schema: z.ZodType<T>;
  default?: T;
  describe: string;
}

export type OptionSpecs = Record<string, OptionSpec<unknown>>;
export type ConfigOf<S extends OptionSpecs> = { [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

export interface ConfigSources {
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, string | string[] | boolean | undefined>;
}

export function parseConfig<S extends OptionSpecs>(specs: S, sources: ConfigSources = {}): ConfigOf<S> {
  const env = sources.env ?? process.env;
  const flags = sources.flags ?? {};
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const fromFlag = spec.flag === undefined ? undefined : flags[spec.flag];
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    const raw = fromFlag ?? (fromEnv === "" ? undefined : fromEnv);
    if (raw === undefined) {
      out[key] = spec.default;
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (!parsed.success) {
      const where = fromFlag !== undefined ? `--${spec.flag}` : spec.env;
      const problem = parsed.error.issues.map((i) => i.message).join("; ");
      throw new GuruError("invalid", `${where}: ${problem} (got ${JSON.stringify(raw)}); expected ${spec.describe}`);
    }
    out[key] = parsed.data;
  }
  return out as ConfigOf<S>;
}

/** A whole number of at least min, from a string or number. */
export const wholeNumber = (min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** Comma-separated list from env, or repeated flags. */
export const stringList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter((s) => s.length > 0));

/** The configuration table for the README, from the specs. */
export function describeOptions(specs: OptionSpecs): string[] {
  return Object.values(specs).map((s) => {
    const names = [s.env, s.flag === undefined ? undefined : `--${s.flag}`].filter(Boolean).join(", ");
    const dflt = s.default === undefined ? "" : ` (default ${JSON.stringify(s.default)})`;
    return `${names}: ${s.describe}${dflt}`;
  });
}
