// Agent keys: 256 random bits, shown once at enrolment. Only a SHA-256 of the
// key is stored; a fast hash is enough because the key is random, not a
// password, and the lookup by hash never compares secrets byte by byte.
import { createHash, randomBytes } from "node:crypto";

const prefix = "guru_ak_";

export function generateAgentKey(): string {
  return prefix + randomBytes(32).toString("base64url");
}

export function hashAgentKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** The key from an `Authorization: Bearer <key>` header, or undefined. */
export function agentKeyFromHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1];
}
