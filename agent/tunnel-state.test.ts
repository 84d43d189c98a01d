import { describe, expect, it } from "vitest";
import { isGuruError } from "../lib/errors.ts";
import { createTunnelState } from "./tunnel-state.ts";

const tunnel = (sessionId: string) => ({ sessionId, technicianId: "t1", technicianName: "ann" });

describe("tunnel state", () => {
  it("holds one tunnel and refuses a second, naming the active one", () => {
    const state = createTunnelState();
    expect(state.open(tunnel("s1"))).toEqual({ ok: true });
    expect(state.open(tunnel("s1"))).toEqual({ ok: true });
    expect(state.open(tunnel("s2"))).toEqual({ ok: false, reason: "another tunnel (session s1) is active" });
    expect(state.active?.sessionId).toBe("s1");
  });

  it("closes only the named tunnel and returns to heartbeat mode", () => {
    const state = createTunnelState();
    state.open(tunnel("s1"));
    expect(state.close("s2")).toBe(false);
    expect(state.active?.sessionId).toBe("s1");
    expect(state.close("s1")).toBe(true);
    expect(state.active).toBeUndefined();
    expect(state.open(tunnel("s2"))).toEqual({ ok: true });
  });

  it("lets operations run only inside the active tunnel", () => {
    const state = createTunnelState();
    expect(() => state.require("s1")).toThrow(/no active tunnel/);
    state.open(tunnel("s1"));
    expect(state.require("s1").technicianName).toBe("ann");
    try {
      state.require("s9");
      expect.unreachable();
    } catch (err) {
      expect(isGuruError(err, "denied")).toBe(true);
    }
  });
});

describe("tunnel capabilities from a consent approval", () => {
  it("allows only what the person approved, and everything when nobody was asked", () => {
    const state = createTunnelState();
    state.open({ sessionId: "s1", technicianId: "t", technicianName: "alice@acme", capabilities: ["files"] });
    expect(() => state.requireCapability("files")).not.toThrow();
    expect(() => state.requireCapability("exec")).toThrow(/approved files for this session, not exec/);
    state.close("s1");
    state.open({ sessionId: "s2", technicianId: "t", technicianName: "bob" });
    expect(() => state.requireCapability("exec")).not.toThrow();
  });
});
