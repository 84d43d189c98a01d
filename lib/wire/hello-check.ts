// What an agent says about itself in Hello is input like any other: every
// field is checked against a range before the server uses, stores or logs it.
// A field out of range refuses that link with a LinkError naming the field;
// nothing it sent is kept. The HelloAck's limits get the same check on the
// agent, so a broken server cannot make an agent send heartbeats in a loop.
import type { DescEnum } from "@bufbuild/protobuf";
import { ConsentModeSchema } from "../../gen/guru/wire/v1/consent_pb.js";
import type { Hello, HelloAck } from "../../gen/guru/wire/v1/wire_pb.js";

const KiB = 1024;
const MiB = 1024 * KiB;

export const helloBounds = Object.freeze({
  /** Below this a frame has too little room for a command line or a directory entry. */
  minFrameBytes: 16 * KiB,
  /** The peer's frames and window travel as uint32; past 64 MiB they are a bug or a lie. */
  maxFrameBytes: 64 * MiB,
  minWindowBytes: 16 * KiB,
  maxWindowBytes: 64 * MiB,
  /** Semver with a build suffix fits with room to spare. */
  maxVersionChars: 64,
  /** RFC 1035 names are at most 253 characters; NetBIOS and odd hosts fit too. */
  maxHostnameChars: 255,
  maxOsChars: 32,
  maxOsReleaseChars: 128,
  maxArchChars: 32,
  /** Today's agents send at most five (exec, files, services, registry, terminal). */
  maxCapabilities: 32,
  maxCapabilityChars: 32,
  minHeartbeatIntervalMs: 50,
  maxHeartbeatIntervalMs: 3_600_000,
});

/** The field that failed, in proto names ("Hello.inventory.hostname"), and why. */
export interface HelloProblem {
  field: string;
  message: string;
}

// Control characters in a name would forge lines in a text log or a terminal.
// Tab is one too: nothing a host reports needs it.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this pattern's purpose.
const controlChars = /[\u0000-\u001f\u007f-\u009f]/;
const capabilityPattern = /^[a-z][a-z0-9_.-]*$/;

function checkText(field: string, value: string, maxChars: number, required: boolean): HelloProblem | undefined {
  if (required && value.length === 0) return { field, message: `${field} is empty` };
  if (value.length > maxChars) return { field, message: `${field} has ${value.length} characters; at most ${maxChars} are allowed` };
  if (controlChars.test(value)) return { field, message: `${field} contains control characters` };
  return undefined;
}

function checkRange(field: string, value: number, min: number, max: number): HelloProblem | undefined {
  if (value >= min && value <= max) return undefined;
  return { field, message: `${field} is ${value}; it must be between ${min} and ${max}` };
}

/** The first problem with a Hello, or undefined when every field is in range. */
export function checkHello(hello: Hello): HelloProblem | undefined {
  const b = helloBounds;
  const inventory = hello.inventory;
  const capabilities = hello.capabilities;
  return (
    checkText("Hello.agent_version", hello.agentVersion, b.maxVersionChars, true) ??
    checkRange("Hello.initial_window_bytes", hello.initialWindowBytes, b.minWindowBytes, b.maxWindowBytes) ??
    checkRange("Hello.max_frame_bytes", hello.maxFrameBytes, b.minFrameBytes, b.maxFrameBytes) ??
    checkText("Hello.inventory.hostname", inventory?.hostname ?? "", b.maxHostnameChars, false) ??
    checkText("Hello.inventory.os", inventory?.os ?? "", b.maxOsChars, false) ??
    checkText("Hello.inventory.os_release", inventory?.osRelease ?? "", b.maxOsReleaseChars, false) ??
    checkText("Hello.inventory.arch", inventory?.arch ?? "", b.maxArchChars, false) ??
    (capabilities.length > b.maxCapabilities
      ? { field: "Hello.capabilities", message: `Hello.capabilities has ${capabilities.length} entries; at most ${b.maxCapabilities} are allowed` }
      : undefined) ??
    checkCapabilities(capabilities) ??
    checkEnum("Hello.consent_mode", hello.consentMode, ConsentModeSchema)
  );
}

// An enum value this server does not know would be stored and acted on as if
// it meant something; a newer agent must not send one an older server lacks.
function checkEnum(field: string, value: number, schema: DescEnum): HelloProblem | undefined {
  if (schema.values.some((v) => v.number === value)) return undefined;
  return { field, message: `${field} is ${value}, not one of ${schema.values.map((v) => v.name).join(", ")}` };
}

function checkCapabilities(capabilities: string[]): HelloProblem | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < capabilities.length; i++) {
    const field = `Hello.capabilities[${i}]`;
    const value = capabilities[i];
    const problem = checkText(field, value, helloBounds.maxCapabilityChars, true);
    if (problem) return problem;
    if (!capabilityPattern.test(value)) return { field, message: `${field} must be a lower-case name like "exec" or "files"` };
    if (seen.has(value)) return { field, message: `${field} repeats "${value}"` };
    seen.add(value);
  }
  return undefined;
}

/** The first problem with the limits a HelloAck announces (checked by the agent). */
export function checkHelloAck(ack: HelloAck): HelloProblem | undefined {
  const b = helloBounds;
  return (
    checkRange("HelloAck.initial_window_bytes", ack.initialWindowBytes, b.minWindowBytes, b.maxWindowBytes) ??
    checkRange("HelloAck.max_frame_bytes", ack.maxFrameBytes, b.minFrameBytes, b.maxFrameBytes) ??
    checkRange("HelloAck.heartbeat_interval_ms", ack.heartbeatIntervalMs, b.minHeartbeatIntervalMs, b.maxHeartbeatIntervalMs) ??
    checkRange("HelloAck.heartbeat_deadline_ms", ack.heartbeatDeadlineMs, ack.heartbeatIntervalMs + 1, 4 * b.maxHeartbeatIntervalMs)
  );
}
