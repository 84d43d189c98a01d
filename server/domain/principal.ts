import { GuruError } from "../../lib/errors.ts";

export type Role = "admin" | "tech";

/** Who is calling, once their token checked out. */
export interface Principal {
  technicianId: string;
  name: string;
  role: Role;
  tokenId: string;
}

export function requireAdmin(principal: Principal): void {
  if (principal.role !== "admin") throw new GuruError("denied", "this call needs the admin role", { reason: "ADMIN_REQUIRED" });
}
