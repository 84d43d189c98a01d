// Technicians: the people (and admins) who hold JWTs issued by the server.
import { GuruError } from "../../lib/errors.ts";
import { isUniqueViolation, isUuid, type Db } from "./db.ts";

export type TechnicianRole = "admin" | "tech";

export interface TechnicianRecord {
  id: string;
  name: string;
  role: TechnicianRole;
  createdAt: Date;
  /** Set once disabled: no token of theirs is accepted and none can be issued. */
  disabledAt: Date | null;
}

export interface TechniciansRepository {
  /** Duplicate name → GuruError "conflict". */
  create(input: { name: string; role: TechnicianRole }): Promise<TechnicianRecord>;
  get(id: string): Promise<TechnicianRecord | undefined>;
  getByName(name: string): Promise<TechnicianRecord | undefined>;
  /** Ordered by name. */
  list(): Promise<TechnicianRecord[]>;
  /** Marks the technician disabled (keeps the first time); undefined for an unknown id. */
  disable(id: string): Promise<TechnicianRecord | undefined>;
}

const columns = `id, name, role, created_at AS "createdAt", disabled_at AS "disabledAt"`;

export function createTechniciansRepository(db: Db): TechniciansRepository {
  const one = async (sql: string, params: unknown[]) => (await db.query<TechnicianRecord>(sql, params)).rows[0];
  return {
    async create({ name, role }) {
      try {
        return await one(`INSERT INTO technicians (name, role) VALUES ($1, $2) RETURNING ${columns}`, [name, role]);
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new GuruError("conflict", `a technician named "${name}" already exists`, { cause: err, reason: "NAME_TAKEN", metadata: { name } });
        }
        throw err;
      }
    },
    get: async (id) => (!isUuid(id) ? undefined : one(`SELECT ${columns} FROM technicians WHERE id = $1`, [id])),
    getByName: (name) => one(`SELECT ${columns} FROM technicians WHERE name = $1`, [name]),
    async list() {
      return (await db.query<TechnicianRecord>(`SELECT ${columns} FROM technicians ORDER BY name`)).rows;
    },
    disable: async (id) =>
      !isUuid(id) ? undefined : one(`UPDATE technicians SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1 RETURNING ${columns}`, [id]),
  };
}
