// list_directory: one page of a directory on an agent.
import { z } from "zod";
import { defineTool, formatBytes } from "../tool.ts";
import { agentParam, onlineAgent, onTunnel, type ToolDeps } from "./context.ts";

const typeMark = { file: "-", dir: "d", symlink: "l", other: "?" } as const;

export function createListDirectoryTool(deps: ToolDeps) {
  return defineTool({
    name: "list_directory",
    title: "List a directory on an agent",
    description:
      "Lists a directory on a managed endpoint: each entry's name, type (file, dir, symlink, other), size, permission bits and modification time. " +
      "Large directories come in pages: pass the returned nextPageToken to get the next one. Only paths the agent's policy allows can be listed; " +
      "then use read_file to read a file.",
    inputSchema: {
      agent: agentParam,
      path: z.string().min(1).describe("absolute path of the directory on the endpoint"),
      pageSize: z.number().int().min(1).max(1000).optional().describe("entries per page; default 200"),
      pageToken: z.string().optional().describe("the nextPageToken of the previous page"),
    },
    outputSchema: {
      path: z.string(),
      entries: z.array(
        z.object({
          name: z.string(),
          type: z.enum(["file", "dir", "symlink", "other"]),
          size: z.number().int(),
          mode: z.number().int(),
          modifiedAt: z.string().nullable(),
        }),
      ),
      totalEntries: z.number().int(),
      nextPageToken: z.string().nullable().describe("null on the last page"),
      note: z.string().optional(),
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args, ctx) {
      const agent = await onlineAgent(deps, args.agent);
      const page = await onTunnel(deps, agent, (sessionId) =>
        deps.api.listDirectory(sessionId, args.path, args.pageSize ?? 200, args.pageToken ?? "", ctx.signal),
      );
      const lines: string[] = [];
      let textBytes = 0;
      let shown = 0;
      for (const e of page.entries) {
        const line = `${typeMark[e.type]}${(e.mode & 0o777).toString(8).padStart(3, "0")} ${formatBytes(e.size).padStart(10)} ${e.modifiedAt ?? "-"} ${e.name}${e.type === "dir" ? "/" : ""}`;
        if (textBytes + line.length + 1 > deps.options.maxOutputBytes) break;
        lines.push(line);
        textBytes += line.length + 1;
        shown++;
      }
      const notes: string[] = [];
      if (shown < page.entries.length)
        notes.push(
          `${page.entries.length - shown} entries of this page are left out of the text (over the output cap); they are in the structured result, or ask for a smaller pageSize.`,
        );
      if (page.nextPageToken) notes.push(`More entries follow (${page.totalEntries} in all); call list_directory with pageToken "${page.nextPageToken}".`);
      const structured = {
        path: page.path || args.path,
        entries: page.entries,
        totalEntries: page.totalEntries,
        nextPageToken: page.nextPageToken || null,
        ...(notes.length > 0 ? { note: notes.join(" ") } : {}),
      };
      const text = `${structured.path} on ${agent.name}: ${page.entries.length} of ${page.totalEntries} entries\n${lines.join("\n")}${notes.length > 0 ? `\nNote: ${notes.join(" ")}` : ""}`;
      return { structured, text };
    },
  });
}
