/** The PostgreSQL server tests create their databases on. */
export function testPgUrl(): string {
  return process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
}
