// One WebSocket binary message is exactly one Frame. Decoding checks the size
// first, so an oversized message is refused before protobuf parses it, and
// turns every failure into a WireProtocolError carrying the LinkError code and
// the close code the link answers with.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FrameSchema, LinkErrorCode, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import type { OutputStream } from "../../gen/guru/wire/v1/exec_pb.js";
import { closeCodes } from "./close-codes.ts";

export class WireProtocolError extends Error {
  readonly code: LinkErrorCode;
  readonly closeCode: number;

  constructor(code: LinkErrorCode, message: string, closeCode: number, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WireProtocolError";
    this.code = code;
    this.closeCode = closeCode;
  }
}

export function encodeFrame(frame: Frame): Uint8Array {
  return toBinary(FrameSchema, frame);
}

export function decodeFrame(bytes: Uint8Array, maxFrameBytes: number): Frame {
  if (bytes.byteLength > maxFrameBytes) {
    throw new WireProtocolError(
      LinkErrorCode.FRAME_TOO_LARGE,
      `frame of ${bytes.byteLength} bytes exceeds maxFrameBytes ${maxFrameBytes}`,
      closeCodes.frameTooLarge,
    );
  }
  let frame: Frame;
  try {
    // Unknown fields are dropped: we never re-send a peer's frame, and keeping
    // them would only hold on to bytes we cannot interpret.
    frame = fromBinary(FrameSchema, bytes, { readUnknownFields: false });
  } catch (err) {
    throw new WireProtocolError(
      LinkErrorCode.MALFORMED_FRAME,
      `frame of ${bytes.byteLength} bytes is not a valid guru.wire.v1.Frame: ${err instanceof Error ? err.message : String(err)}`,
      closeCodes.protocolError,
      { cause: err },
    );
  }
  if (frame.kind.case === undefined) {
    // A kind from a newer peer, or bytes that happen to parse as no field we know.
    throw new WireProtocolError(
      LinkErrorCode.UNKNOWN_FRAME_KIND,
      `frame on channel ${frame.channelId} has no kind this side knows (a newer peer, or garbage)`,
      closeCodes.protocolError,
    );
  }
  return frame;
}

/** Builds a Frame from its channel and kind; the one place frames are created. */
export function makeFrame(channelId: number, kind: Frame["kind"]): Frame {
  return create(FrameSchema, { channelId, kind });
}

// Field tags, (field number << 3) | wire type. Frame.channel_id = 1 (varint),
// Frame.data = 21 (length-delimited), ChannelData.data = 1 (length-delimited),
// .offset = 2 (varint), .stream = 3 (varint).
const tagChannelId = 0x08;
const tagFrameData = [0xaa, 0x01] as const;
const tagDataBytes = 0x0a;
const tagDataOffset = 0x10;
const tagDataStream = 0x18;

/**
 * Encodes a ChannelData frame byte-for-byte as encodeFrame would, with one
 * allocation and one copy of the payload. The generic writer grows its buffer
 * and shifts nested messages, copying a 256 KiB payload several times; data
 * frames are nearly all the bytes on a link.
 */
export function encodeDataFrame(
  channelId: number,
  data: Uint8Array,
  offset: bigint,
  stream: OutputStream,
  allocate: (size: number) => Uint8Array = (size) => Buffer.allocUnsafe(size),
): Uint8Array {
  const offsetNumber = offset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(offset) : -1;
  const innerSize =
    (data.byteLength > 0 ? 1 + varintSize(data.byteLength) + data.byteLength : 0) +
    (offset !== 0n ? 1 + (offsetNumber >= 0 ? varintSize(offsetNumber) : bigVarintSize(offset)) : 0) +
    (stream !== 0 ? 1 + varintSize(stream) : 0);
  const size = (channelId !== 0 ? 1 + varintSize(channelId) : 0) + 2 + varintSize(innerSize) + innerSize;
  // Not zero-filled: every byte is written below (the tests compare with toBinary).
  const out: Uint8Array = allocate(size);
  let pos = 0;
  if (channelId !== 0) {
    out[pos++] = tagChannelId;
    pos = writeVarint(out, pos, channelId);
  }
  out[pos++] = tagFrameData[0];
  out[pos++] = tagFrameData[1];
  pos = writeVarint(out, pos, innerSize);
  if (data.byteLength > 0) {
    out[pos++] = tagDataBytes;
    pos = writeVarint(out, pos, data.byteLength);
    out.set(data, pos);
    pos += data.byteLength;
  }
  if (offset !== 0n) {
    out[pos++] = tagDataOffset;
    pos = offsetNumber >= 0 ? writeVarint(out, pos, offsetNumber) : writeBigVarint(out, pos, offset);
  }
  if (stream !== 0) {
    out[pos++] = tagDataStream;
    pos = writeVarint(out, pos, stream);
  }
  if (pos !== size) throw new Error(`encodeDataFrame wrote ${pos} of ${size} bytes`);
  return out;
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    out[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

function bigVarintSize(value: bigint): number {
  let size = 1;
  while (value >= 0x80n) {
    value >>= 7n;
    size++;
  }
  return size;
}

function writeBigVarint(out: Uint8Array, pos: number, value: bigint): number {
  while (value >= 0x80n) {
    out[pos++] = Number(value & 0x7fn) | 0x80;
    value >>= 7n;
  }
  out[pos++] = Number(value);
  return pos;
}

// Heartbeats are nearly every frame an idle link carries: a server with
// 19,000 agents answers hundreds a second. They skip the generic (reflective)
// decoder and encoder: Frame.heartbeat = 12 and .heartbeat_ack = 13, both
// length-delimited, each holding only `uint64 sequence = 1` (a varint).
const tagHeartbeat = (12 << 3) | 2;
const tagHeartbeatAck = (13 << 3) | 2;
const tagSequence = 0x08;

/**
 * The sequence of a channel-0 Heartbeat frame in the encoding every protobuf
 * writer produces (channel id 0 omitted, only the sequence field), or
 * undefined for anything else, which then goes through decodeFrame.
 */
export function heartbeatSequenceOf(bytes: Uint8Array): bigint | undefined {
  if (bytes.byteLength < 2 || bytes.byteLength > 13 || bytes[0] !== tagHeartbeat || bytes[1] !== bytes.byteLength - 2) return undefined;
  if (bytes.byteLength === 2) return 0n;
  if (bytes[2] !== tagSequence) return undefined;
  let value = 0n;
  let shift = 0n;
  for (let pos = 3; pos < bytes.byteLength; pos++) {
    const b = bytes[pos];
    value |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    // The last byte ends the varint; a continuation bit anywhere else is left to the generic decoder.
    if ((b & 0x80) === 0) return pos === bytes.byteLength - 1 && value <= 0xffff_ffff_ffff_ffffn ? value : undefined;
  }
  return undefined;
}

/** A HeartbeatAck frame, byte-for-byte as encodeFrame would write it. */
export function encodeHeartbeatAck(sequence: bigint): Uint8Array {
  if (sequence === 0n) return Uint8Array.of(tagHeartbeatAck, 0);
  const innerSize = 1 + bigVarintSize(sequence);
  const out = new Uint8Array(2 + innerSize);
  out[0] = tagHeartbeatAck;
  out[1] = innerSize;
  out[2] = tagSequence;
  writeBigVarint(out, 3, sequence);
  return out;
}
