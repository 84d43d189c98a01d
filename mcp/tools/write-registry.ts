// write_registry: set or delete one registry value on a Windows agent.
import { z } from "zod";
import { guruError } from "../errors.ts";
import { defineTool } from "../tool.ts";
import { agentParam, type ToolDeps } from "./context.ts";
import { registryValueSchema } from "./read-registry.ts";
import { withSystemAgent } from "./system-capability.ts";

export function createWriteRegistryTool(deps: ToolDeps) {
  return defineTool({
    name: "write_registry",
    title: "Write or delete a Windows registry value on an agent",
    description:
      "Sets one registry value on a Windows endpoint (creating the key if needed), or deletes it with delete: true. The answer has the value before " +
      "and after. Call it with dryRun: true first to see both without changing anything. data is text for sz and expand_sz, a decimal or 0x number for " +
      "dword and qword, hex bytes for binary, and a list of strings for multi_sz. Only keys the agent's policy allows (by default HKLM\\SOFTWARE and HKCU). " +
      "Counts against the technician's rate limit.",
    inputSchema: {
      agent: agentParam,
      key: z.string().min(1).describe("the key, such as HKCU\\Software\\Vendor"),
      valueName: z.string().describe('the value\'s name; "" for the default value'),
      type: z.enum(["sz", "expand_sz", "multi_sz", "dword", "qword", "binary"]).optional().describe("required unless delete is true"),
      data: z
        .union([z.string(), z.array(z.string())])
        .optional()
        .describe("the new data; a list of strings for multi_sz"),
      delete: z.boolean().optional().describe("true: delete the value instead"),
      dryRun: z.boolean().optional().describe("true: report before and after, change nothing"),
    },
    outputSchema: {
      agent: z.string(),
      key: z.string(),
      valueName: z.string(),
      dryRun: z.boolean(),
      deleted: z.boolean(),
      before: registryValueSchema.nullable(),
      after: registryValueSchema.nullable(),
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    async run(args, ctx) {
      const dryRun = args.dryRun === true;
      const r = await withSystemAgent(deps, args.agent, "registry", (sessionId) => {
        if (args.delete === true) return deps.api.system.deleteRegistryValue(sessionId, { key: args.key, valueName: args.valueName, dryRun }, ctx.signal);
        if (args.type === undefined || args.data === undefined)
          throw guruError("invalid", "type and data are required to write a value", "pass type and data, or delete: true to delete the value");
        const data = args.type === "multi_sz" ? ([] as string[]).concat(args.data) : Array.isArray(args.data) ? args.data.join("") : args.data;
        return deps.api.system.writeRegistry(sessionId, { key: args.key, valueName: args.valueName, type: args.type, data, dryRun }, ctx.signal);
      });
      const before = r.before ? registryValueSchema.parse(r.before) : null;
      const after = r.after ? registryValueSchema.parse(r.after) : null;
      const show = (v: typeof before) => (v === null ? "(absent)" : `REG_${v.type.toUpperCase()} ${Array.isArray(v.data) ? JSON.stringify(v.data) : v.data}`);
      return {
        structured: { agent: args.agent, key: r.key, valueName: args.valueName, dryRun, deleted: args.delete === true && !dryRun, before, after },
        text: `${r.key}\\${args.valueName || "(default)"} on ${args.agent}${dryRun ? " (dry run: nothing changed)" : ""}: ${show(before)} → ${show(after)}`,
      };
    },
  });
}
