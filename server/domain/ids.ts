import { GuruError } from "../../lib/errors.ts";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

/** Ids are UUIDs; anything else is refused before it reaches the database. */
export function requireUuid(value: string, what: string): string {
  // "session id" → the field sessionId
  if (!isUuid(value))
    throw new GuruError("invalid", `${what} "${value}" is not a UUID`, { metadata: { field: what.replace(/ (\w)/g, (_, c: string) => c.toUpperCase()) } });
  return value;
}
