// A tiny argv parser for the `guru` binary: --name value, --name=value,
// repeated flags, boolean flags, and `--` ending the flags.
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | string[] | boolean>;
  /** Everything after a bare `--`. */
  rest: string[];
}

export function parseArgs(argv: string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, string | string[] | boolean> = {};
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest = argv.slice(i + 1);
      break;
    }
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    let value: string | boolean;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (booleanFlags.includes(name)) value = true;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) value = argv[++i];
    else value = true;
    const prior = flags[name];
    if (prior === undefined || typeof prior === "boolean" || typeof value === "boolean") flags[name] = value;
    else flags[name] = Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  return { positionals, flags, rest };
}
