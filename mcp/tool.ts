// What a tool is in `guru mcp`, independent of the SDK: schemas, annotations
// and a run function that answers structured data plus the text a model reads.
// mcp/server.ts adapts these to McpServer.registerTool, maps errors once and
// turns ToolContext.progress into progress notifications.
import type { z } from "zod";

export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  /** Every tool here reaches out to endpoints outside this process. */
  openWorldHint?: boolean;
}

export interface ToolContext {
  /** Aborted when the client cancels the call (or guru mcp exits). */
  signal: AbortSignal;
  /** A progress notification, when the client asked for them (a no-op otherwise). */
  progress(progress: number, total: number | undefined, message: string): void;
}

export interface ToolOutput<T> {
  structured: T;
  /** What a model reads first: a summary, the output, and any note on what was left out. */
  text: string;
}

export interface ToolDefinition<I extends z.ZodRawShape, O extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  inputSchema: I;
  outputSchema: O;
  annotations: ToolAnnotations;
  run(args: z.infer<z.ZodObject<I>>, ctx: ToolContext): Promise<ToolOutput<z.infer<z.ZodObject<O>>>>;
}

// The loosest form, for the registry: each tool keeps its own precise types
// (run is a method, so its parameter is checked bivariantly and every tool fits).
export type AnyTool = ToolDefinition<z.ZodRawShape, z.ZodRawShape>;

export function defineTool<I extends z.ZodRawShape, O extends z.ZodRawShape>(tool: ToolDefinition<I, O>): ToolDefinition<I, O> {
  return tool;
}

const KiB = 1024;

/** Bytes for people and models: "812 B", "64.0 KiB", "3.2 MiB". */
export function formatBytes(n: number): string {
  if (n < KiB) return `${n} B`;
  if (n < KiB * KiB) return `${(n / KiB).toFixed(1)} KiB`;
  return `${(n / KiB / KiB).toFixed(1)} MiB`;
}
