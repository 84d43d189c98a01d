import { describe, expect, it } from "vitest";
import { ErrorKind as WireErrorKind } from "../../gen/guru/wire/v1/wire_pb.js";
import { errorKinds } from "../errors.ts";
import { fromWireErrorKind, guruErrorFromWire, toWireErrorKind } from "./error-kinds.ts";

describe("error kinds", () => {
  it("round-trips every kind the wire can carry", () => {
    for (const kind of errorKinds) {
      const wire = toWireErrorKind(kind);
      expect(wire).not.toBe(WireErrorKind.UNSPECIFIED);
      expect(fromWireErrorKind(wire)).toBe(kind);
    }
  });

  it("maps UNSPECIFIED and values from a newer peer to internal", () => {
    expect(fromWireErrorKind(WireErrorKind.UNSPECIFIED)).toBe("internal");
    expect(fromWireErrorKind(99 as WireErrorKind)).toBe("internal");
  });

  it("builds a GuruError from a ChannelError, with a message even when the peer sent none", () => {
    const err = guruErrorFromWire(WireErrorKind.NOT_FOUND, "no such file: /etc/x");
    expect(err.kind).toBe("not_found");
    expect(err.message).toBe("no such file: /etc/x");
    expect(guruErrorFromWire(WireErrorKind.DENIED, "").message).toMatch(/without a message/);
  });
});
