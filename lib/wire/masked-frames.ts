// Client-to-server WebSocket frames are masked (RFC 6455 5.3). `ws` masks a
// message into a fresh copy of it, since it cannot know whether the caller's
// bytes may be overwritten: for an agent sending a GiB, a GiB of allocations
// and page faults. Every frame a link sends is a buffer it encoded for that
// send alone, so the agent masks it in place and writes the WebSocket header
// and the payload back to back, with a random masking key as `ws` draws it.
import { randomFillSync } from "node:crypto";
import { createRequire } from "node:module";

/** bufferutil (a dependency, as `ws` uses it): native masking; `source` and `output` may be the same buffer. */
const { mask } = createRequire(import.meta.url)("bufferutil") as {
  mask(source: Uint8Array, key: Uint8Array, output: Uint8Array, offset: number, length: number): void;
};

/** The part of a net.Socket this needs. */
export interface FrameWritable {
  cork(): void;
  uncork(): void;
  write(chunk: Uint8Array, callback?: (err?: Error | null) => void): boolean;
}

const randomPool = Buffer.alloc(8 * 1024);
let randomPoolPos = randomPool.byteLength;

/** WebSocket opcodes (RFC 6455 5.2) a client sends. */
export const wsOpcodes = Object.freeze({ binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa });

/** The WebSocket header of a final, masked frame of `length` bytes, with a fresh masking key at its end. */
function maskedFrameHeader(opcode: number, length: number): Buffer {
  const lengthBytes = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const header = Buffer.allocUnsafe(2 + lengthBytes + 4);
  header[0] = 0x80 | opcode; // FIN
  if (lengthBytes === 0) header[1] = 0x80 | length;
  else if (lengthBytes === 2) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2);
    header.writeUInt32BE(length >>> 0, 6);
  }
  if (randomPoolPos + 4 > randomPool.byteLength) {
    randomFillSync(randomPool);
    randomPoolPos = 0;
  }
  randomPool.copy(header, 2 + lengthBytes, randomPoolPos, randomPoolPos + 4);
  randomPoolPos += 4;
  return header;
}

/** The header of a final, masked binary frame of `length` bytes. */
export function maskedBinaryHeader(length: number): Buffer {
  return maskedFrameHeader(wsOpcodes.binary, length);
}

/** Writes `payload` as one masked frame of `opcode`, masking it in place: its bytes are garbage afterwards. */
export function writeMaskedFrame(socket: FrameWritable, opcode: number, payload: Uint8Array, done?: (err?: Error | null) => void): void {
  const header = maskedFrameHeader(opcode, payload.byteLength);
  if (payload.byteLength > 0) mask(payload, header.subarray(header.byteLength - 4), payload, 0, payload.byteLength);
  socket.cork();
  socket.write(header);
  socket.write(payload, done);
  socket.uncork();
}
