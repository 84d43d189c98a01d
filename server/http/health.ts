// /healthz (the process answers) and /readyz (the database answers, every
// migration is applied and, clustered, NATS answers and the node is not draining), and /metrics for Prometheus.
import type http from "node:http";
import type http2 from "node:http2";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Registry } from "prom-client";
import type { Logger } from "../../lib/logging.ts";
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

/** Compares a presented bearer token with the expected one in constant time (both hashed first, so lengths never leak). */
function bearerMatches(header: string | string[] | undefined, expected: string): boolean {
  const match = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  const same = timingSafeEqual(digest(match?.[1] ?? ""), digest(expected));
  return match !== null && same;
}

export function createOperationalRoutes(deps: { db: Db; metrics: Registry; logger: Logger; metricsToken?: string; notReady?: () => string | undefined }) {
  return async function handle(req: Req, res: Res): Promise<boolean> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      send(res, 200, "ok\n");
      return true;
    }
    if (path === "/readyz") {
      try {
        const status = await migrationsStatus(deps.db);
        const why = deps.notReady?.();
        if (status.pending.length > 0) send(res, 503, `migrations pending: ${status.pending.join(", ")}\n`);
        else if (why !== undefined) send(res, 503, `${why}\n`);
        else send(res, 200, "ready\n");
      } catch (err) {
        // The driver's text can name hosts, users and databases: it goes to the log only.
        deps.logger.warn({ err }, "readiness check: the database did not answer");
        send(res, 503, "database unreachable\n");
      }
      return true;
    }
    if (path === "/metrics") {
      if (deps.metricsToken !== undefined && !bearerMatches(req.headers.authorization, deps.metricsToken)) {
        (res as http.ServerResponse).setHeader("www-authenticate", 'Bearer realm="metrics"');
        send(res, 401, "metrics need 'Authorization: Bearer <GURU_METRICS_TOKEN>'\n");
        return true;
      }
      send(res, 200, await deps.metrics.metrics(), deps.metrics.contentType);
      return true;
    }
    return false;
  };
}
