// write_file: create or replace a file on an agent through the resumable
// upload calls (start with the content's SHA-256, chunks, finish). The agent
// writes a temp file, checks the hash and renames it into place, keeping the
// replaced file as a backup.
import { createHash } from "node:crypto";
import { z } from "zod";
import type { GuruApi } from "../api.ts";
import { isGuruError } from "../../lib/errors.ts";
import { guruError } from "../errors.ts";
import { defineTool, formatBytes } from "../tool.ts";
import { agentParam, onlineAgent, onTunnel, type ToolDeps } from "./context.ts";

const chunkBytes = 1024 * 1024;

async function upload(api: GuruApi, sessionId: string, path: string, content: Uint8Array, sha256: string, overwrite: boolean, signal: AbortSignal) {
  const { uploadId, committedOffset } = await api.startUpload(sessionId, path, content.length, sha256, overwrite, signal);
  try {
    for (let offset = committedOffset; offset < content.length; offset += chunkBytes) {
      await api.uploadChunk(uploadId, offset, content.subarray(offset, offset + chunkBytes), signal);
    }
    return await api.finishUpload(uploadId, signal);
  } catch (err) {
    // Leave no half-written temp file behind on the endpoint.
    await api.abortUpload(uploadId).catch(() => undefined);
    throw err;
  }
}

export function createWriteFileTool(deps: ToolDeps) {
  return defineTool({
    name: "write_file",
    title: "Write a file on an agent",
    description:
      "Creates or replaces a file on a managed endpoint with the given content (UTF-8 text, or base64 for binary). " +
      "An existing file is only replaced with `overwrite: true`; the replaced file is kept as a backup whose path the result gives. " +
      `The write is atomic and verified by SHA-256. At most ${formatBytes(deps.options.maxWriteBytes)}. ` +
      "Only paths the agent's policy allows can be written. Read the file first (read_file) when you change part of it.",
    inputSchema: {
      agent: agentParam,
      path: z.string().min(1).describe("absolute path of the file on the endpoint"),
      content: z.string().describe("the whole new content"),
      encoding: z.enum(["utf8", "base64"]).optional().describe("how `content` is encoded; default utf8"),
      overwrite: z.boolean().optional().describe("replace an existing file (kept as a backup); default false"),
    },
    outputSchema: {
      path: z.string(),
      size: z.number().int(),
      sha256: z.string(),
      backupPath: z.string().nullable().describe("where the replaced file was kept; null when nothing was replaced"),
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    async run(args, ctx) {
      const content = args.encoding === "base64" ? Buffer.from(args.content, "base64") : Buffer.from(args.content, "utf8");
      if (content.length > deps.options.maxWriteBytes) {
        throw guruError(
          "too_large",
          `the content is ${formatBytes(content.length)}, over the ${formatBytes(deps.options.maxWriteBytes)} write_file accepts`,
          "write a smaller file, or produce the content on the endpoint with run_command",
        );
      }
      const agent = await onlineAgent(deps, args.agent);
      const sha256 = createHash("sha256").update(content).digest("hex");
      const done = await onTunnel(deps, agent, (sessionId) =>
        upload(deps.api, sessionId, args.path, content, sha256, args.overwrite ?? false, ctx.signal),
      ).catch((err: unknown) => {
        if (isGuruError(err, "conflict") && !args.overwrite)
          throw guruError(
            "conflict",
            err.message,
            "read_file it first if you have not; then call write_file again with overwrite: true to replace it (the old file is kept as a backup), or choose another path",
            err,
          );
        throw err;
      });
      const structured = { path: done.path || args.path, size: done.size, sha256: done.sha256 || sha256, backupPath: done.backupPath };
      const text = `wrote ${formatBytes(structured.size)} to ${structured.path} on ${agent.name} (SHA-256 ${structured.sha256})${structured.backupPath ? `; the previous file was kept at ${structured.backupPath}` : ""}`;
      return { structured, text };
    },
  });
}
