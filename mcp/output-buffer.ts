// A bounded byte buffer addressed by absolute offsets: a command job appends
// its output as it arrives and get_command_output pages through it. Past
// maxBytes the oldest bytes are dropped (a command's last output says most
// about how it ended), and offsets keep counting from the first byte ever
// written, so a page address stays valid while the command runs.

export interface BufferSlice {
  data: Uint8Array;
  /** Absolute offset of data[0]. */
  from: number;
  /** Absolute offset just past the slice: the next page starts here. */
  to: number;
  /** Bytes before `from` that were asked for but had already been dropped. */
  dropped: number;
}

export function createOutputBuffer(maxBytes: number) {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let total = 0;

  function dropHead(): void {
    while (kept > maxBytes) {
      const excess = kept - maxBytes;
      const head = chunks[0];
      if (head.length <= excess) {
        chunks.shift();
        kept -= head.length;
      } else {
        chunks[0] = head.subarray(excess);
        kept -= excess;
      }
    }
  }

  return {
    append(data: Uint8Array): void {
      if (data.length === 0) return;
      chunks.push(data);
      kept += data.length;
      total += data.length;
      dropHead();
    },
    /** Bytes ever written. */
    get total(): number {
      return total;
    },
    /** Absolute offset of the oldest byte still kept. */
    get start(): number {
      return total - kept;
    },
    /**
     * At most maxSliceBytes from offset, ending on a UTF-8 character boundary
     * (unless `complete`: nothing more will come, so the last bytes are given
     * as they are rather than held back forever).
     */
    read(offset: number, maxSliceBytes: number, complete = false): BufferSlice {
      const start = total - kept;
      let from = Math.min(Math.max(offset, start), total);
      const dropped = Math.max(0, Math.min(start, total) - offset);
      const want = Math.min(maxSliceBytes, total - from);
      const out = new Uint8Array(want);
      let filled = 0;
      let pos = start;
      for (const chunk of chunks) {
        if (filled === want) break;
        const chunkEnd = pos + chunk.length;
        if (chunkEnd > from) {
          const begin = Math.max(0, from - pos);
          const piece = chunk.subarray(begin, Math.min(chunk.length, begin + (want - filled)));
          out.set(piece, filled);
          filled += piece.length;
        }
        pos = chunkEnd;
      }
      let data = out;
      // After dropping, the oldest kept byte may sit inside a character.
      if (from === start && dropped > 0) {
        const skip = leadingContinuationBytes(data);
        data = data.subarray(skip);
        from += skip;
      }
      if (!(complete && from + data.length === total)) data = data.subarray(0, utf8SafeLength(data));
      return { data, from, to: from + data.length, dropped };
    },
  };
}

export type OutputBuffer = ReturnType<typeof createOutputBuffer>;

function leadingContinuationBytes(data: Uint8Array): number {
  let n = 0;
  while (n < Math.min(3, data.length) && (data[n] & 0xc0) === 0x80) n++;
  return n;
}

/** The length of data without a multi-byte character cut off at its end. */
export function utf8SafeLength(data: Uint8Array): number {
  const len = data.length;
  // Walk back over at most 3 continuation bytes to the lead byte.
  for (let back = 1; back <= Math.min(4, len); back++) {
    const byte = data[len - back];
    if ((byte & 0xc0) === 0x80) continue;
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? len - back : len;
  }
  return len;
}

const decoder = new TextDecoder("utf-8");

/** Output bytes as text; invalid sequences become U+FFFD rather than failing. */
export function decodeText(data: Uint8Array): string {
  return decoder.decode(data);
}
