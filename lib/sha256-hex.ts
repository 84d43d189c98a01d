// The one spelling of a SHA-256 the contract accepts: 64 lowercase hex digits
// (callers lowercase what they were given first).
const sha256HexPattern = /^[0-9a-f]{64}$/;

export function isSha256Hex(value: string): boolean {
  return sha256HexPattern.test(value);
}
