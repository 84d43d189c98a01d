// Keys of simulated agents, derived from a per-run seed and an index, so the
// bench process enrols their hashes and the load generator dials with the
// keys without 20,000 keys crossing the IPC channel.
import { createHash } from "node:crypto";

export function simAgentKey(seed: string, index: number): string {
  return `guru_ak_${createHash("sha256").update(`${seed}:${index}`).digest("base64url")}`;
}
