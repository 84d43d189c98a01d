// What an agent can really do: its Hello lists what its policy allows
// (capabilities) and, apart, what its OS supports (system_support). The
// server records the intersection, so ListAgents (and `guru mcp`, which says
// which agents have a capability) shows only what will work. An agent too old
// to send system_support has no service or registry handlers at all.
import type { Hello } from "../../gen/guru/wire/v1/wire_pb.js";

export function effectiveCapabilities(hello: Hello): string[] {
  const support = hello.systemSupport;
  return hello.capabilities.filter((c) => {
    if (c === "services") return support?.services === true;
    if (c === "registry") return support?.registry === true;
    return true;
  });
}
