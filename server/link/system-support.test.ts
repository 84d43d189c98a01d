import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { HelloSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { effectiveCapabilities } from "./system-support.ts";

describe("effectiveCapabilities", () => {
  it("keeps services and registry only where the OS supports them too", () => {
    const hello = create(HelloSchema, {
      capabilities: ["exec", "files", "services", "registry"],
      serviceManager: "sysv",
      systemSupport: { services: true, registry: false, registryMissing: "the registry exists only on Windows; this agent runs linux" },
    });
    expect(effectiveCapabilities(hello)).toEqual(["exec", "files", "services"]);
  });

  it("an agent too old to report system support has neither", () => {
    expect(effectiveCapabilities(create(HelloSchema, { capabilities: ["exec", "services", "registry"] }))).toEqual(["exec"]);
  });

  it("support without the policy's consent is not a capability", () => {
    expect(effectiveCapabilities(create(HelloSchema, { capabilities: ["exec"], systemSupport: { services: true, registry: true } }))).toEqual(["exec"]);
  });
});
