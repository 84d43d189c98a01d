// read_registry: one value, or a key's subkeys and values, on a Windows agent.
import { z } from "zod";
import { defineTool } from "../tool.ts";
import { agentParam, type ToolDeps } from "./context.ts";
import { capLines, withSystemAgent } from "./system-capability.ts";

export const registryValueSchema = z.object({
  name: z.string().describe('"" is the key\'s default value'),
  type: z.enum(["sz", "expand_sz", "multi_sz", "dword", "qword", "binary", "none"]),
  data: z
    .union([z.string(), z.array(z.string())])
    .describe("text for sz/expand_sz (unexpanded), decimal for dword/qword, hex for binary, the strings for multi_sz"),
});

const show = (v: z.infer<typeof registryValueSchema>) =>
  `${(v.name || "(default)").padEnd(24)}  REG_${v.type.toUpperCase()}  ${Array.isArray(v.data) ? v.data.map((s) => JSON.stringify(s)).join(", ") : v.data}`;

export function createReadRegistryTool(deps: ToolDeps) {
  return defineTool({
    name: "read_registry",
    title: "Read the Windows registry on an agent",
    description:
      "Reads the registry of a Windows endpoint: with valueName, that one value (type and data); without it, the key's subkeys and values. " +
      "Keys are written like HKLM\\SOFTWARE\\Vendor or HKCU\\Software\\Vendor; the agent's local policy limits which keys (by default HKLM\\SOFTWARE and HKCU). " +
      "Needs the agent's registry capability (Windows agents whose policy allows it; list_agents shows it).",
    inputSchema: {
      agent: agentParam,
      key: z.string().min(1).describe("the key, such as HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"),
      valueName: z.string().optional().describe('a value\'s name; "" for the default value; omit to list the key'),
    },
    outputSchema: {
      agent: z.string(),
      key: z.string(),
      value: registryValueSchema.nullable().optional(),
      subkeys: z.array(z.string()).optional(),
      values: z.array(registryValueSchema).optional(),
      note: z.string().optional(),
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args, ctx) {
      if (args.valueName !== undefined) {
        const r = await withSystemAgent(deps, args.agent, "registry", (sessionId) =>
          deps.api.system.readRegistry(sessionId, args.key, args.valueName ?? "", ctx.signal),
        );
        const value = r.value === null ? null : registryValueSchema.parse(r.value);
        return { structured: { agent: args.agent, key: r.key, value }, text: `${r.key} on ${args.agent}\n${value ? show(value) : "(absent)"}` };
      }
      const r = await withSystemAgent(deps, args.agent, "registry", (sessionId) => deps.api.system.listRegistry(sessionId, args.key, ctx.signal));
      const values = r.values.map((v) => registryValueSchema.parse(v));
      const page = capLines([...r.subkeys.map((s) => `${s}\\`), ...values.map(show)], deps.options.maxOutputBytes);
      const note = page.omitted > 0 ? `${page.omitted} lines are left out of the text (over the output cap); they are in the structured result.` : undefined;
      return {
        structured: { agent: args.agent, key: r.key, subkeys: r.subkeys, values, ...(note ? { note } : {}) },
        text: `${r.key} on ${args.agent}: ${r.subkeys.length} subkeys, ${values.length} values\n${page.text}${note ? `\nNote: ${note}` : ""}`,
      };
    },
  });
}
