// Failure alerts: more than `threshold` failed or refused commands within
// `windowMs` for one technician, or for one agent, raise an alert: a warn log
// line, an audit event and a counter. Counts come from the audit table, so
// every server process sees the same numbers; only the "already alerted"
// memory is per process (at worst each process alerts once per window).
import type { Logger } from "../../lib/logging.ts";
import type { Store } from "../store/index.ts";

export interface FailureAlertsOptions {
  store: Pick<Store, "audit">;
  logger: Logger;
  threshold: number;
  windowMs: number;
  /** A counter on /metrics; kind is "command_failures_technician" or "command_failures_agent". */
  onAlert?(kind: string): void;
}

export type AlertSubject = "technician" | "agent";

export interface RaisedAlert {
  subject: AlertSubject;
  id: string;
  count: number;
}

export function createFailureAlerts(options: FailureAlertsOptions) {
  const { store, logger, threshold, windowMs } = options;
  // subject:id → when we last alerted; one alert per subject per window, not one per failure.
  const alertedAt = new Map<string, number>();

  function recentlyAlerted(key: string, now: number): boolean {
    for (const [k, at] of alertedAt) if (now - at >= windowMs) alertedAt.delete(k);
    return alertedAt.has(key);
  }

  async function checkOne(subject: AlertSubject, id: string): Promise<RaisedAlert | undefined> {
    const count = await store.audit.countFailedCommandsSince(
      subject === "technician" ? { technicianId: id, sinceMs: windowMs } : { agentId: id, sinceMs: windowMs },
    );
    if (count <= threshold) return undefined;
    const key = `${subject}:${id}`;
    // Checked and set with no await between, so concurrent failures alert once.
    if (recentlyAlerted(key, Date.now())) return undefined;
    alertedAt.set(key, Date.now());
    const reason = `${count} failed or refused commands in the last ${Math.round(windowMs / 1000)} s for one ${subject} (threshold ${threshold})`;
    logger.warn({ alert: "command_failures", subject, [`${subject}Id`]: id, count, threshold, windowMs }, `security alert: ${reason}`);
    await store.audit.tunnel({
      event: "alert",
      outcome: "raised",
      technicianId: subject === "technician" ? id : null,
      agentId: subject === "agent" ? id : null,
      reason,
      detail: { kind: "command_failures", subject, count, threshold, windowMs },
    });
    options.onAlert?.(`command_failures_${subject}`);
    return { subject, id, count };
  }

  return {
    /** After a failed or refused command: alerts for its technician and its agent if either crossed the threshold. */
    async afterFailure(subject: { technicianId: string; agentId?: string }): Promise<RaisedAlert[]> {
      const raised: RaisedAlert[] = [];
      try {
        const t = await checkOne("technician", subject.technicianId);
        if (t) raised.push(t);
        if (subject.agentId !== undefined) {
          const a = await checkOne("agent", subject.agentId);
          if (a) raised.push(a);
        }
      } catch (err) {
        // An alert check must never turn into the caller's error.
        logger.error({ err }, "failure alert check failed");
      }
      return raised;
    },
  };
}

export type FailureAlerts = ReturnType<typeof createFailureAlerts>;
