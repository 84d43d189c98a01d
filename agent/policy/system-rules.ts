// The local policy's rules for services and the registry. Each refusal names
// the rule that refused, so the endpoint's owner and the technician see the
// same reason.
import { GuruError } from "../../lib/errors.ts";
import { parseRegistryKey } from "../system/system-names.ts";
import type { LocalPolicy } from "./local-policy.ts";

function globMatches(pattern: string, name: string): boolean {
  const body = pattern
    .split("*")
    .map((part) => part.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`, "i").test(name);
}

export function requireSystemCapability(policy: LocalPolicy, capability: "services" | "registry"): void {
  if (policy.capabilities[capability] !== true) {
    throw new GuruError("denied", `the agent's local policy disables ${capability} (rule capabilities.${capability} is off)`, {
      details: { capability, rule: `capabilities.${capability}` },
    });
  }
}

/** Control (start, stop, restart, enable, disable) of one service. */
export function requireServiceControl(policy: LocalPolicy, name: string): void {
  const rules = policy.services;
  if (!rules.control) {
    throw new GuruError("denied", "the agent's local policy allows listing services only (rule services.control is false)", {
      details: { rule: "services.control" },
    });
  }
  const deny = rules.deny.find((p) => globMatches(p, name));
  if (deny !== undefined) {
    throw new GuruError("denied", `the agent's local policy denies control of service ${name} (rule services.deny "${deny}")`, {
      details: { rule: `services.deny`, pattern: deny },
    });
  }
  if (rules.allow.length > 0 && !rules.allow.some((p) => globMatches(p, name))) {
    throw new GuruError("denied", `service ${name} is not in the agent's services.allow list (${rules.allow.join(", ")})`, {
      details: { rule: "services.allow" },
    });
  }
}

/** Every registry operation: the key must lie under one of the allowed prefixes, part by part. */
export function requireRegistryKey(policy: LocalPolicy, key: string): void {
  const parts = parseRegistryKey(key).text.toLowerCase().split("\\");
  const allowed = policy.registryKeys.some((prefix) => {
    const want = parseRegistryKey(prefix).text.toLowerCase().split("\\");
    return want.length <= parts.length && want.every((p, i) => p === parts[i]);
  });
  if (!allowed) {
    throw new GuruError(
      "denied",
      `registry key ${parseRegistryKey(key).text} is outside the agent's registryKeys (${policy.registryKeys.join(", ") || "none"})`,
      {
        details: { rule: "registryKeys", key: parseRegistryKey(key).text },
      },
    );
  }
}
