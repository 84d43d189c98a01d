import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { ConsentMode } from "../../gen/guru/wire/v1/consent_pb.js";
import { HelloAckSchema, HelloSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { checkHello, checkHelloAck, helloBounds } from "./hello-check.ts";

const good = () =>
  create(HelloSchema, {
    agentVersion: "0.2.0",
    inventory: { hostname: "web-1.example.com", os: "linux", osRelease: "6.1.0-18-amd64", arch: "x64" },
    capabilities: ["exec", "files"],
    initialWindowBytes: 2 * 1024 * 1024,
    maxFrameBytes: 1024 * 1024 + 4096,
  });

describe("checkHello", () => {
  it("accepts what a real agent sends, and a Hello without inventory", () => {
    expect(checkHello(good())).toBeUndefined();
    const bare = good();
    bare.inventory = undefined;
    bare.capabilities = [];
    expect(checkHello(bare)).toBeUndefined();
  });

  it.each([
    ["max_frame_bytes 0", (h: ReturnType<typeof good>) => (h.maxFrameBytes = 0), "Hello.max_frame_bytes"],
    ["max_frame_bytes 1", (h: ReturnType<typeof good>) => (h.maxFrameBytes = 1), "Hello.max_frame_bytes"],
    ["max_frame_bytes 64", (h: ReturnType<typeof good>) => (h.maxFrameBytes = 64), "Hello.max_frame_bytes"],
    ["max_frame_bytes 2^32-1", (h: ReturnType<typeof good>) => (h.maxFrameBytes = 0xffff_ffff), "Hello.max_frame_bytes"],
    ["initial_window_bytes 0", (h: ReturnType<typeof good>) => (h.initialWindowBytes = 0), "Hello.initial_window_bytes"],
    ["initial_window_bytes 2^32-1", (h: ReturnType<typeof good>) => (h.initialWindowBytes = 0xffff_ffff), "Hello.initial_window_bytes"],
    ["empty agent_version", (h: ReturnType<typeof good>) => (h.agentVersion = ""), "Hello.agent_version"],
    ["500 KB hostname", (h: ReturnType<typeof good>) => (h.inventory!.hostname = "h".repeat(500_000)), "Hello.inventory.hostname"],
    ["hostname with a newline", (h: ReturnType<typeof good>) => (h.inventory!.hostname = 'web-1\n{"level":60}'), "Hello.inventory.hostname"],
    ["long os", (h: ReturnType<typeof good>) => (h.inventory!.os = "o".repeat(helloBounds.maxOsChars + 1)), "Hello.inventory.os"],
    ["long os_release", (h: ReturnType<typeof good>) => (h.inventory!.osRelease = "r".repeat(500_000)), "Hello.inventory.os_release"],
    ["long arch", (h: ReturnType<typeof good>) => (h.inventory!.arch = "a".repeat(33)), "Hello.inventory.arch"],
    ["too many capabilities", (h: ReturnType<typeof good>) => (h.capabilities = Array.from({ length: 10_000 }, (_, i) => `c${i}`)), "Hello.capabilities"],
    ["a long capability", (h: ReturnType<typeof good>) => (h.capabilities = ["exec", "x".repeat(500_000)]), "Hello.capabilities[1]"],
    ["an odd capability", (h: ReturnType<typeof good>) => (h.capabilities = ["Exec Everything"]), "Hello.capabilities[0]"],
    ["a repeated capability", (h: ReturnType<typeof good>) => (h.capabilities = ["exec", "exec"]), "Hello.capabilities[1]"],
    ["an unknown consent_mode", (h: ReturnType<typeof good>) => (h.consentMode = 99 as ConsentMode), "Hello.consent_mode"],
  ])("refuses %s, naming the field", (_name, spoil, field) => {
    const hello = good();
    spoil(hello);
    const problem = checkHello(hello);
    expect(problem?.field).toBe(field);
    expect(problem?.message).toContain(field);
    expect(problem!.message.length).toBeLessThan(200);
  });
});

describe("checkHelloAck", () => {
  const ack = () => create(HelloAckSchema, { heartbeatIntervalMs: 30_000, heartbeatDeadlineMs: 90_000, initialWindowBytes: 2 << 20, maxFrameBytes: 1 << 20 });
  it("accepts the server's defaults and refuses a zero heartbeat interval or a deadline below it", () => {
    expect(checkHelloAck(ack())).toBeUndefined();
    expect(checkHelloAck({ ...ack(), heartbeatIntervalMs: 0 })?.field).toBe("HelloAck.heartbeat_interval_ms");
    expect(checkHelloAck({ ...ack(), heartbeatDeadlineMs: 10 })?.field).toBe("HelloAck.heartbeat_deadline_ms");
    expect(checkHelloAck({ ...ack(), maxFrameBytes: 1 })?.field).toBe("HelloAck.max_frame_bytes");
  });
});
