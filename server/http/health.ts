// /healthz (the process answers) and /readyz (the database answers and every
// migration is applied), and /metrics for Prometheus.
import type http from "node:http";
import type http2 from "node:http2";
import type { Registry } from "prom-client";
import type { Db } from "../store/db.ts";
import { migrationsStatus } from "../store/migrate.ts";

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

function send(res: Res, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  // Both response kinds have these; their overloads do not unify in TypeScript.
  const out = res as http.ServerResponse;
  out.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  out.end(body);
}

export function createOperationalRoutes(deps: { db: Db; metrics: Registry }) {
  return async function handle(req: Req, res: Res): Promise<boolean> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      send(res, 200, "ok\n");
      return true;
    }
    if (path === "/readyz") {
      try {
        const status = await migrationsStatus(deps.db);
        if (status.pending.length > 0) send(res, 503, `migrations pending: ${status.pending.join(", ")}\n`);
        else send(res, 200, "ready\n");
      } catch (err) {
        send(res, 503, `database unreachable: ${(err as Error).message}\n`);
      }
      return true;
    }
    if (path === "/metrics") {
      send(res, 200, await deps.metrics.metrics(), deps.metrics.contentType);
      return true;
    }
    return false;
  };
}
