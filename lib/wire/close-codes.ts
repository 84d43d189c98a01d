// WebSocket close codes on agent links. 1000-1015 are RFC 6455's; 4000-4999
// are ours (the range RFC 6455 leaves to applications). The agent decides
// from the code whether to reconnect: see `shouldReconnect`.

export const closeCodes = Object.freeze({
  /** Orderly end (server drain finished, agent shutting down). */
  normal: 1000,
  /** The endpoint is going away (process exit, server drain). */
  goingAway: 1001,
  /** The peer broke the wire protocol (malformed frame, unknown channel, flow control). */
  protocolError: 1002,
  /** A text message arrived; agent links carry binary protobuf Frames only. */
  unsupportedData: 1003,
  /** No close frame was received (socket dropped); reported by `ws`, never sent. */
  abnormal: 1006,
  /** The peer broke a rule that is not framing: a Hello field out of range, a flood of control frames. */
  policyViolation: 1008,
  /** A frame exceeded maxFrameBytes. */
  frameTooLarge: 1009,
  /** An unexpected fault on our side. */
  internalError: 1011,
  /** Replaced by a newer connection of the same agent. */
  replaced: 4000,
  /** Nothing arrived from the peer within the heartbeat deadline. */
  heartbeatTimeout: 4001,
  /** The Hello/HelloAck exchange did not finish in time. */
  handshakeTimeout: 4002,
  /** The agent's key was revoked. */
  revoked: 4003,
  /** The agent key was missing, unknown or malformed at the upgrade. */
  unauthenticated: 4004,
  /** The agent's version or subprotocol is not supported. */
  incompatible: 4005,
});

/** Codes an endpoint may put in a close frame (RFC 6455 7.4). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** RFC 6455 limits a close reason to 123 bytes of UTF-8. */
const maxCloseReasonBytes = 123;

/** A close reason cut to what a close frame holds, on a character boundary. */
export function truncateCloseReason(reason: string): string {
  const bytes = Buffer.from(reason, "utf8");
  if (bytes.byteLength <= maxCloseReasonBytes) return reason;
  // Decoding a cut multi-byte sequence yields U+FFFD, which we drop.
  return `${bytes
    .subarray(0, maxCloseReasonBytes - 3)
    .toString("utf8")
    .replace(/\uFFFD+$/, "")}...`;
}

export type CloseCodeName = keyof typeof closeCodes;

const names = new Map<number, CloseCodeName>((Object.entries(closeCodes) as [CloseCodeName, number][]).map(([name, code]) => [code, name]));

/** The name of a close code for logs ("heartbeatTimeout"), or "unknown(4999)". */
export function closeCodeName(code: number): string {
  return names.get(code) ?? `unknown(${code})`;
}

/**
 * Whether an agent should dial again soon after its link closed with this
 * code. Revoked, unauthenticated, incompatible and replaced links should not:
 * retrying at once cannot succeed, and a replaced agent would fight its
 * successor (the agent waits a long, jittered pause after `replaced`, in case
 * the other process holding its key has gone by then).
 */
export function shouldReconnect(code: number): boolean {
  return !(code === closeCodes.revoked || code === closeCodes.unauthenticated || code === closeCodes.incompatible || code === closeCodes.replaced);
}
