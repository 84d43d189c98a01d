// MIME types for files the agent serves. Magic numbers first (file-type knows
// binary formats by their headers, whatever the name says); then the
// extension, for text formats that have no magic; then a sniff: valid UTF-8
// without NUL bytes is text/plain, anything else application/octet-stream.
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { fileTypeFromBuffer } from "file-type";

/** file-type needs at most this many leading bytes to recognise any format it knows. */
const mimeSampleBytes = 4100;

const byExtension: Readonly<Record<string, string>> = {
  ".txt": "text/plain",
  ".log": "text/plain",
  ".conf": "text/plain",
  ".cfg": "text/plain",
  ".ini": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
  ".tsv": "text/tab-separated-values",
  ".json": "application/json",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".toml": "application/toml",
  ".xml": "application/xml",
  ".html": "text/html",
  ".htm": "text/html",
  ".css": "text/css",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".ts": "text/x-typescript",
  ".sh": "text/x-shellscript",
  ".bash": "text/x-shellscript",
  ".ps1": "text/x-powershell",
  ".psm1": "text/x-powershell",
  ".bat": "text/x-msdos-batch",
  ".cmd": "text/x-msdos-batch",
  ".py": "text/x-python",
  ".reg": "text/x-ms-regedit",
  ".svg": "image/svg+xml",
};

function looksLikeText(sample: Uint8Array): boolean {
  if (sample.includes(0)) return false;
  try {
    // stream: true (and no final flush) tolerates a multi-byte character cut off by the end of the sample.
    new TextDecoder("utf-8", { fatal: true }).decode(sample, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** The MIME type of a file from its first bytes and its name. */
export async function mimeTypeOf(name: string, sample: Uint8Array): Promise<string> {
  const magic = await fileTypeFromBuffer(sample);
  if (magic) return magic.mime;
  const byExt = byExtension[path.extname(name).toLowerCase()];
  if (byExt) return byExt;
  return looksLikeText(sample) ? "text/plain" : "application/octet-stream";
}

/** Reads the sample through an open handle (no second open, so no second path lookup). */
export async function mimeTypeOfHandle(name: string, handle: FileHandle): Promise<string> {
  const buffer = Buffer.alloc(mimeSampleBytes);
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return mimeTypeOf(name, buffer.subarray(0, filled));
}
