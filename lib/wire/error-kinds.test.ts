import { describe, expect, it } from "vitest";
import { ErrorKind as WireErrorKind } from "../../gen/guru/wire/v1/wire_pb.js";
import { errorKinds } from "../errors.ts";
import { GuruError } from "../errors.ts";
import { fromWireErrorKind, guruErrorFromWire, toWireErrorKind, wireErrorOf } from "./error-kinds.ts";

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
    const err = guruErrorFromWire({ kind: WireErrorKind.NOT_FOUND, message: "no such file: /etc/x" });
    expect(err.kind).toBe("not_found");
    expect(err.message).toBe("no such file: /etc/x");
    expect(guruErrorFromWire({ kind: WireErrorKind.DENIED, message: "" }).message).toMatch(/without a message/);
  });

  it("carries reason and metadata across the hop; an older peer's empty reason is the kind's default", () => {
    const sent = new GuruError("failed_precondition", "expected offset 42", { reason: "UPLOAD_OFFSET_MISMATCH", metadata: { expectedOffset: 42, offset: 7 } });
    const got = guruErrorFromWire(wireErrorOf(sent));
    expect([got.kind, got.reason, got.metadata]).toEqual(["failed_precondition", "UPLOAD_OFFSET_MISMATCH", { expectedOffset: "42", offset: "7" }]);
    const old = guruErrorFromWire({ kind: WireErrorKind.AGENT_OFFLINE, message: "gone", reason: "" });
    expect([old.reason, old.metadata]).toEqual(["AGENT_OFFLINE", {}]);
    // A reason this build does not know (from a newer agent) is kept as it came.
    expect(guruErrorFromWire({ kind: WireErrorKind.DENIED, message: "x", reason: "SOMETHING_NEWER" }).reason).toBe("SOMETHING_NEWER");
  });
});
