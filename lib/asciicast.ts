// asciicast v2, the recording format asciinema plays: a header line (JSON
// object), then one JSON array per event: [seconds since start, code, data].
// Codes used here: "o" output, "i" input (keystrokes), "r" resize ("COLSxROWS"),
// "m" marker (a note, e.g. where output stopped being recorded).
import { GuruError } from "./errors.ts";

export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  /** Unix time of the start, in seconds. */
  timestamp: number;
  env?: Record<string, string>;
  title?: string;
}

export type AsciicastCode = "o" | "i" | "r" | "m";

export interface AsciicastEvent {
  time: number;
  code: AsciicastCode;
  data: string;
}

export function encodeHeader(header: AsciicastHeader): string {
  return `${JSON.stringify(header)}\n`;
}

export function encodeEvent(time: number, code: AsciicastCode, data: string): string {
  // Microseconds are asciinema's own precision.
  return `${JSON.stringify([Math.round(time * 1e6) / 1e6, code, data])}\n`;
}

/** Parses a whole recording; throws GuruError("invalid") naming the bad line. */
export function parseAsciicast(text: string): { header: AsciicastHeader; events: AsciicastEvent[] } {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0) throw new GuruError("invalid", "the recording is empty");
  let header: AsciicastHeader;
  try {
    header = JSON.parse(lines[0]) as AsciicastHeader;
  } catch {
    throw new GuruError("invalid", "line 1 of the recording is not an asciicast header");
  }
  if (header.version !== 2) throw new GuruError("invalid", `asciicast version ${String(header.version)} is not supported (only 2)`);
  const events = lines.slice(1).map((line, i) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new GuruError("invalid", `line ${i + 2} of the recording is not JSON`);
    }
    if (!Array.isArray(value) || typeof value[0] !== "number" || typeof value[1] !== "string" || typeof value[2] !== "string") {
      throw new GuruError("invalid", `line ${i + 2} of the recording is not an asciicast event`);
    }
    return { time: value[0], code: value[1] as AsciicastCode, data: value[2] };
  });
  return { header, events };
}
