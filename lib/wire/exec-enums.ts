// The exec enums of both contracts (guru.wire.v1 between server and agent,
// guru.api.v1 for clients) mapped once to the names in lib/wire/shells.ts.
// Every edge converts through these; an enum value a newer peer sent that is
// not known here maps to undefined, and the caller refuses it.
import * as api from "../../gen/guru/api/v1/exec_pb.js";
import * as wire from "../../gen/guru/wire/v1/exec_pb.js";
import type { ExitReasonName, OutputStreamName, ShellName } from "./shells.ts";

interface EnumMap<E extends number, N extends string> {
  toEnum: Record<N, E>;
  /** undefined for UNSPECIFIED and for values this build does not know. */
  fromEnum(value: E): N | undefined;
}

function enumMap<E extends number, N extends string>(toEnum: Record<N, E>): EnumMap<E, N> {
  const back = new Map<number, N>();
  for (const [name, value] of Object.entries(toEnum) as [N, E][]) back.set(value, name);
  return { toEnum, fromEnum: (value) => back.get(value) };
}

export const wireShells = enumMap<wire.Shell, ShellName>({
  bash: wire.Shell.BASH,
  sh: wire.Shell.SH,
  powershell: wire.Shell.POWERSHELL,
  pwsh: wire.Shell.PWSH,
  cmd: wire.Shell.CMD,
});

export const apiShells = enumMap<api.Shell, ShellName>({
  bash: api.Shell.BASH,
  sh: api.Shell.SH,
  powershell: api.Shell.POWERSHELL,
  pwsh: api.Shell.PWSH,
  cmd: api.Shell.CMD,
});

export const wireExitReasons = enumMap<wire.ExitReason, ExitReasonName>({
  exited: wire.ExitReason.EXITED,
  timed_out: wire.ExitReason.TIMED_OUT,
  canceled: wire.ExitReason.CANCELED,
  killed: wire.ExitReason.KILLED,
});

export const apiExitReasons = enumMap<api.ExitReason, ExitReasonName>({
  exited: api.ExitReason.EXITED,
  timed_out: api.ExitReason.TIMED_OUT,
  canceled: api.ExitReason.CANCELED,
  killed: api.ExitReason.KILLED,
});

export const wireOutputStreams = enumMap<wire.OutputStream, OutputStreamName>({
  stdout: wire.OutputStream.STDOUT,
  stderr: wire.OutputStream.STDERR,
});

export const apiOutputStreams = enumMap<api.OutputStream, OutputStreamName>({
  stdout: api.OutputStream.STDOUT,
  stderr: api.OutputStream.STDERR,
});
