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

export interface LinkChurnAlertsOptions {
  store: Pick<Store, "audit">;
  logger: Logger;
  /** Replacements of one agent's link within windowMs that raise an alert. */
  threshold: number;
  windowMs: number;
  /** A counter on /metrics; kind is "link_churn". */
  onAlert?(kind: string): void;
}

/**
 * Link churn: an agent's link replaced again and again within a window is
 * two processes holding the same agent key (a cloned machine, a stolen key),
 * each reconnecting to push the other out. Links live in one process, so the
 * count is per process, kept for the agents replaced within the window only.
 */
export function createLinkChurnAlerts(options: LinkChurnAlertsOptions) {
  const { store, logger, threshold, windowMs } = options;
  const replacedAt = new Map<string, number[]>();
  const alertedAt = new Map<string, number>();

  function forget(now: number): void {
    for (const [id, times] of replacedAt) if (now - times[times.length - 1] >= windowMs) replacedAt.delete(id);
    for (const [id, at] of alertedAt) if (now - at >= windowMs) alertedAt.delete(id);
  }

  return {
    /** An agent's link was replaced by a newer one; resolves true when this raised an alert. Never rejects. */
    async linkReplaced(agent: { id: string; name: string }): Promise<boolean> {
      const now = Date.now();
      forget(now);
      // Only the last `threshold` times matter, so memory per agent stays bounded.
      const times = (replacedAt.get(agent.id) ?? []).filter((t) => now - t < windowMs).slice(-(threshold - 1));
      times.push(now);
      replacedAt.set(agent.id, times);
      if (times.length < threshold || alertedAt.has(agent.id)) return false;
      alertedAt.set(agent.id, now);
      const reason = `the link of agent ${agent.name} was replaced ${times.length} times within ${Math.round(windowMs / 1000)} s: two processes may be using the same agent key`;
      logger.warn({ alert: "link_churn", agentId: agent.id, agent: agent.name, count: times.length, threshold, windowMs }, `security alert: ${reason}`);
      options.onAlert?.("link_churn");
      try {
        await store.audit.tunnel({
          event: "alert",
          outcome: "raised",
          agentId: agent.id,
          reason,
          detail: { kind: "link_churn", count: times.length, threshold, windowMs },
        });
      } catch (err) {
        logger.error({ err }, "could not write the link churn alert to the audit log");
      }
      return true;
    },
  };
}

export type LinkChurnAlerts = ReturnType<typeof createLinkChurnAlerts>;
