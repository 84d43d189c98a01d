// The SHA-256 of a file an upload is sending, taken from the bytes as they go
// out instead of from a read of the whole file before the first byte moves.
// Bytes are hashed in file order: a retry that sends bytes again (from the
// agent's committed offset) adds nothing, and a resume that starts past what
// is hashed reads the gap from the file first.
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";

const gapReadBytes = 1024 * 1024;

export interface SendingHash {
  /** Hashes the file up to `offset` by reading it; call before sending from there. */
  catchUp(offset: number): Promise<void>;
  /** The bytes at `position` are being sent; they must not start past what is hashed (catchUp first). */
  sent(position: number, data: Uint8Array): void;
  /** Hex digest of the whole file; every byte up to `size` must have been hashed. The same answer when asked again. */
  digest(size: number): string;
}

export function createSendingHash(file: Pick<FileHandle, "read">): SendingHash {
  const hash = createHash("sha256");
  let hashedTo = 0;
  let digest: string | undefined;
  return {
    async catchUp(offset) {
      const buffer = Buffer.allocUnsafe(gapReadBytes);
      while (hashedTo < offset) {
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.byteLength, offset - hashedTo), hashedTo);
        if (bytesRead === 0) throw new Error(`the file ended at ${hashedTo}, before offset ${offset}`);
        hash.update(buffer.subarray(0, bytesRead));
        hashedTo += bytesRead;
      }
    },
    sent(position, data) {
      const end = position + data.byteLength;
      if (end <= hashedTo) return;
      if (position > hashedTo) throw new Error(`bytes at ${position} sent before the file was hashed up to there (${hashedTo})`);
      hash.update(data.subarray(hashedTo - position));
      hashedTo = end;
    },
    digest(size) {
      if (digest !== undefined) return digest;
      if (hashedTo !== size) throw new Error(`only ${hashedTo} of ${size} bytes were hashed`);
      digest = hash.digest("hex");
      return digest;
    },
  };
}
