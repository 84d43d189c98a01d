// Where the agent's key comes from. Preferred: a file only its owner can read
// (--key-file, GURU_AGENT_KEY_FILE). Accepted: GURU_AGENT_KEY, removed from
// this process's environment as soon as it is read, so nothing started later
// (the launcher, a command, a crash reporter) can inherit it. Whoever has the
// key can connect as this agent.
import { readFile, stat } from "node:fs/promises";
import { GuruError } from "../lib/errors.ts";

const agentKeyEnv = "GURU_AGENT_KEY";
const minKeyChars = 16;

export interface AgentKeySources {
  keyFile?: string;
  /** --key (shows in ps) or GURU_AGENT_KEY, as the config read them. */
  key?: string;
  platform?: NodeJS.Platform;
}

/**
 * Removes GURU_AGENT_KEY from env (process.env by default), whatever the
 * source of the key: a stale one must not reach anything started later.
 */
export function forgetAgentKeyEnv(env: NodeJS.ProcessEnv = process.env): void {
  delete env[agentKeyEnv];
}

/** Reads the key; a key file readable by group or others is refused with the chmod that fixes it. */
export async function readAgentKey(sources: AgentKeySources): Promise<string> {
  const platform = sources.platform ?? process.platform;
  if (sources.keyFile !== undefined) {
    const file = sources.keyFile;
    let mode: number;
    try {
      mode = (await stat(file)).mode;
    } catch (err) {
      throw new GuruError("invalid", `agent key file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
        details: { file },
      });
    }
    // Windows has no mode bits to check; its ACLs are the owner's business.
    if (platform !== "win32" && (mode & 0o077) !== 0) {
      const octal = (mode & 0o777).toString(8).padStart(3, "0");
      throw new GuruError("invalid", `agent key file ${file} is readable by group or others (mode ${octal}); run: chmod 600 ${file}`, {
        details: { file, mode: octal },
      });
    }
    const key = (await readFile(file, "utf8")).trim();
    if (key.length < minKeyChars)
      throw new GuruError("invalid", `agent key file ${file} does not hold an agent key (fewer than ${minKeyChars} characters)`, { details: { file } });
    return key;
  }
  if (sources.key !== undefined) return sources.key;
  throw new GuruError("invalid", "no agent key: pass --key-file FILE (a file of mode 0600 holding the key shown at enrolment) or set GURU_AGENT_KEY");
}
