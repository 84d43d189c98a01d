// read_file: a range of a file on an agent. Text comes back as text; a binary
// file is described (size, MIME type, SHA-256) rather than dumped into the
// model's context. The cap applies while reading: the range asked of the
// server is at most the cap, and the stream is cut if more arrives.
import { createHash } from "node:crypto";
import { z } from "zod";
import { guruError } from "../errors.ts";
import { utf8SafeLength } from "../output-buffer.ts";
import { defineTool, formatBytes } from "../tool.ts";
import { agentParam, onlineAgent, onTunnel, type ToolDeps } from "./context.ts";

const textMimes =
  /^(text\/|application\/(json|xml|yaml|toml|javascript|x-sh|x-yaml|x-ndjson|sql|graphql|ld\+json)|image\/svg\+xml|inode\/x-empty)|\+json$|\+xml$/i;

function validUtf8(data: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data);
    return !data.includes(0);
  } catch {
    return false;
  }
}

export function createReadFileTool(deps: ToolDeps) {
  const capKiB = Math.round(deps.options.maxOutputBytes / 1024);
  return defineTool({
    name: "read_file",
    title: "Read a file on an agent",
    description:
      `Reads a file on a managed endpoint, from \`offset\` for up to \`length\` bytes (default and maximum ${capKiB} KiB per call). ` +
      "Text files come back as text with the file's size and the offset to read next (`nextOffset`; `eof: true` at the end). " +
      "Binary files are not shown: you get their size, MIME type and the SHA-256 of the bytes read; inspect them with a command (e.g. `file`, `strings`, `head -c`) instead. " +
      "Only paths the agent's policy allows can be read; list_directory shows what a folder holds.",
    inputSchema: {
      agent: agentParam,
      path: z.string().min(1).describe("absolute path of the file on the endpoint"),
      offset: z.number().int().min(0).optional().describe("byte offset to start at (the previous nextOffset); default 0"),
      length: z.number().int().positive().optional().describe(`bytes to read; default and maximum ${capKiB} KiB`),
    },
    outputSchema: {
      path: z.string(),
      size: z.number().int().describe("the whole file's size in bytes"),
      mimeType: z.string(),
      binary: z.boolean().describe("true: the content is not shown (not text, or not valid UTF-8)"),
      offset: z.number().int(),
      bytesRead: z.number().int(),
      nextOffset: z.number().int(),
      eof: z.boolean().describe("this read reached the end of the file"),
      sha256: z.string().describe("hex SHA-256 of the bytes read (of the whole file when offset is 0 and eof is true)"),
      text: z.string().optional().describe("the content, for text files"),
      note: z.string().optional(),
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    async run(args, ctx) {
      const agent = await onlineAgent(deps, args.agent);
      const offset = args.offset ?? 0;
      const want = Math.min(args.length ?? deps.options.maxOutputBytes, deps.options.maxOutputBytes);
      const read = await onTunnel(deps, agent, async (sessionId) => {
        // Our own controller: we cut the stream once we have enough.
        const controller = new AbortController();
        const onAbort = () => controller.abort();
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        const chunks: Uint8Array[] = [];
        let got = 0;
        let info: { path: string; size: number; mimeType: string } | undefined;
        try {
          for await (const event of deps.api.readFile(sessionId, args.path, offset, want, controller.signal)) {
            if (event.type === "info") info = event;
            else if (event.type === "chunk") {
              const piece = event.data.subarray(0, want - got);
              chunks.push(piece);
              got += piece.length;
              if (got >= want) break;
            }
          }
        } finally {
          ctx.signal.removeEventListener("abort", onAbort);
          controller.abort();
        }
        if (info === undefined) throw guruError("internal", "the server sent no file information", "retry once; report it to the technician if it persists");
        return { info, data: Buffer.concat(chunks, got) };
      });

      const { info } = read;
      const textual = textMimes.test(info.mimeType) || info.size === 0;
      const reachesEnd = offset + read.data.length >= info.size;
      // A cut at the end of the range may split a character: hand it to the next read.
      const data = textual && !reachesEnd ? read.data.subarray(0, utf8SafeLength(read.data)) : read.data;
      const binary = !(textual && validUtf8(data));
      const nextOffset = offset + data.length;
      const eof = nextOffset >= info.size;
      const sha256 = createHash("sha256").update(data).digest("hex");
      const notes: string[] = [];
      if (!eof && !binary) notes.push(`${formatBytes(info.size - nextOffset)} more not shown; call read_file with offset ${nextOffset} for the next part.`);
      if (binary) notes.push(`Binary content (${info.mimeType}) is not shown; inspect it with run_command (file, strings, xxd | head) if you need to.`);
      if (offset > info.size) notes.push(`offset ${offset} is past the end of the file (${info.size} bytes).`);
      const structured = {
        path: info.path || args.path,
        size: info.size,
        mimeType: info.mimeType,
        binary,
        offset,
        bytesRead: data.length,
        nextOffset,
        eof,
        sha256,
        ...(binary ? {} : { text: new TextDecoder().decode(data) }),
        ...(notes.length > 0 ? { note: notes.join(" ") } : {}),
      };
      const head = `${structured.path} (${info.mimeType}, ${formatBytes(info.size)}): bytes ${offset}-${nextOffset}${eof ? " (end of file)" : ""}`;
      const text = binary
        ? `${head}\nSHA-256 of these bytes: ${sha256}\n${notes.join(" ")}`
        : `${head}\n${structured.text}${notes.length > 0 ? `\nNote: ${notes.join(" ")}` : ""}`;
      return { structured, text };
    },
  });
}
