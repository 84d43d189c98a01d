// vitest globalSetup: builds (or finds) the migrated PGlite template and
// probes the test PostgreSQL once per run, then hands both to test files
// through provide/inject (see databases.ts).
import pg from "pg";
import type { TestProject } from "vitest/node";
import { ensurePgliteTemplate, removeStaleTemplates } from "./pglite-template.ts";
import { testPgUrl } from "./pg-url.ts";

declare module "vitest" {
  export interface ProvidedContext {
    guruPgliteTemplate: string;
    guruPgAvailable: boolean;
    guruPgReason: string;
  }
}

async function probePg(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (err) {
    return `PostgreSQL not reachable at ${redact(url)}: ${(err as Error).message || String(err)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
}

export default async function setup(project: TestProject): Promise<void> {
  const disabled = process.env.TEST_DATABASE_URL === "none";
  const [template, pgProblem] = await Promise.all([
    ensurePgliteTemplate(),
    disabled ? Promise.resolve("PostgreSQL disabled by TEST_DATABASE_URL=none") : probePg(testPgUrl()),
  ]);
  await removeStaleTemplates(template.dir);
  // An explicitly configured database that is down is a broken setup, not a reason to skip.
  if (pgProblem && !disabled && process.env.TEST_DATABASE_URL) throw new Error(`TEST_DATABASE_URL is set but ${pgProblem}`);
  project.provide("guruPgliteTemplate", template.dir);
  project.provide("guruPgAvailable", pgProblem === undefined);
  project.provide("guruPgReason", pgProblem ?? "");
  if (template.built) process.stderr.write(`[guru] built PGlite test template in ${template.ms} ms: ${template.dir}\n`);
}
