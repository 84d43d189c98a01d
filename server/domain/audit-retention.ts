// The audit retention sweep: rows older than the retention period leave the
// audit tables, and rate-limit events older than the widest window leave
// theirs (a key never hit again would keep its events forever otherwise).
// Scheduled by the server on an unref'd timer; close() waits for a sweep in
// flight so the database is never closed under it.
import type { Logger } from "../../lib/logging.ts";
import type { Store } from "../store/index.ts";
import type { SweepResult } from "../store/audit.ts";

export interface AuditRetentionOptions {
  store: Pick<Store, "audit" | "rateLimits" | "terminals" | "systemAudit">;
  logger: Logger;
  retentionDays: number;
  /** The widest rate-limit window in use; older events no longer count. */
  rateWindowMs: number;
  /** Audit tables kept by other parts (the partner API's): remove rows older than this; returns how many. */
  sweepMore?(olderThanMs: number): Promise<number>;
}

const auditSweepIntervalMs = 3600_000;
const dayMs = 86_400_000;

export function createAuditRetention(options: AuditRetentionOptions) {
  const { store, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let closed = false;

  async function sweep(): Promise<SweepResult & { system: number; rateLimitEvents: number; terminals: number }> {
    const removed = { ...(await store.audit.sweep(options.retentionDays * dayMs)), system: await store.systemAudit.sweep(options.retentionDays * dayMs) };
    // Terminal rows take their recordings with them: same retention as the audit.
    const terminals = await store.terminals.sweep(options.retentionDays * dayMs);
    const rateLimitEvents = await store.rateLimits.sweep(options.rateWindowMs);
    const more = (await options.sweepMore?.(options.retentionDays * dayMs)) ?? 0;
    if (more > 0) logger.info({ rows: more, retentionDays: options.retentionDays }, "partner audit rows past retention removed");
    const total = removed.tunnel + removed.commands + removed.files + removed.system + terminals;
    if (total > 0) logger.info({ ...removed, terminals, retentionDays: options.retentionDays }, "audit rows past retention removed");
    return { ...removed, terminals, rateLimitEvents };
  }

  function sweepInBackground(): void {
    if (closed || running) return;
    running = sweep()
      .catch((err) => logger.error({ err }, "audit retention sweep failed"))
      .finally(() => (running = undefined));
  }

  return {
    sweep,
    /** Sweeps now (in the background) and then every intervalMs. */
    start(intervalMs = auditSweepIntervalMs): void {
      if (timer) return;
      sweepInBackground();
      timer = setInterval(sweepInBackground, intervalMs);
      timer.unref();
    },
    async close(): Promise<void> {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}

export type AuditRetention = ReturnType<typeof createAuditRetention>;
