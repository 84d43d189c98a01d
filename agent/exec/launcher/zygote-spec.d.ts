// Types of zygote-spec.js (plain JavaScript: the launcher process loads no TypeScript).

export const zygoteShell: string;
export const zygoteExit: Readonly<{ noInput: number; noDirectory: number }>;
export const zygoteScript: string;

/** A key naming the environment, or undefined when a zygote's shell could not pass it on unchanged. */
export function zygoteEnvKey(env: unknown): string | undefined;

/** What the zygote reads (cwd, file, args), or undefined when the launch is better spawned. */
export function zygoteSpec(file: unknown, args: unknown, cwd: unknown): string | undefined;

/** True for a regular file this process may execute. */
export function isExecutableFile(file: string): boolean;

/** Why a chdir into `dir` fails, as spawn's error code would say it. */
export function chdirFailure(dir: string): string;
