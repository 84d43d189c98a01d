// The first admin. A new server has no technician to call AdminService with,
// so on first start it creates "admin" and writes a token for it to a file
// only the server's user can read (never to a log).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../lib/logging.ts";
import type { Store } from "../store/index.ts";
import type { TechnicianRecord } from "../store/technicians.ts";
import type { TokenService } from "./tokens.ts";

export async function ensureAdmin(deps: { store: Store; tokens: TokenService; dataDir: string; logger: Logger }): Promise<TechnicianRecord> {
  const existing = (await deps.store.technicians.list()).find((t) => t.role === "admin");
  if (existing !== undefined) return existing;
  let admin: TechnicianRecord;
  try {
    admin = await deps.store.technicians.create({ name: "admin", role: "admin" });
  } catch {
    // Another server process created it first.
    const again = await deps.store.technicians.getByName("admin");
    if (again === undefined) throw new Error("could not create the first admin");
    return again;
  }
  const { token } = await deps.tokens.issue(admin.id);
  await mkdir(deps.dataDir, { recursive: true });
  const file = join(deps.dataDir, "admin-token");
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  deps.logger.info({ file }, "created the first admin; its token is in this file");
  return admin;
}
