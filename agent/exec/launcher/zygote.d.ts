// Types of zygote.js (plain JavaScript: the launcher process loads no TypeScript).
import type { Socket } from "node:net";

/** A key naming the environment, or undefined when a waiting shell could not pass it on unchanged. */
export function zygoteEnvKey(env: unknown): string | undefined;

/** What the waiting shell reads (cwd, file, args), or undefined when the launch is better spawned. */
export function zygoteSpec(file: unknown, args: unknown, cwd: unknown): string | undefined;

export interface Zygotes {
  launch(request: LaunchRequest): boolean;
  discard(id: number): void;
  commandStarted(): void;
  commandEnded(): void;
  stdioReady(): void;
}

export interface LaunchRequest {
  id: number;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  detached: boolean;
}

export function createZygotes(deps: {
  groups: Set<number>;
  readyIds(): number[];
  stdioOf(id: number): { stdout: Socket; stderr: Socket } | undefined;
  send(message: object): void;
  started(id: number): void;
  fallback(request: LaunchRequest): void;
  failed(id: number, code: string, message: string): void;
}): Zygotes;
