// Prometheus metrics (prom-client), one registry per server instance so tests
// can run several servers in one process.
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    agentsConnected: new Gauge({ name: "guru_agents_connected", help: "agent links open on this server", registers: [registry] }),
    tunnelsOpened: new Counter({ name: "guru_tunnels_opened_total", help: "tunnel sessions opened", registers: [registry] }),
    commands: new Counter({
      name: "guru_commands_total",
      help: "remote commands by audit outcome (allowed, refused, failed)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    fileBytes: new Counter({
      name: "guru_file_bytes_total",
      help: "file bytes moved, by direction (upload, download)",
      labelNames: ["direction"] as const,
      registers: [registry],
    }),
    fileTransfers: new Counter({
      name: "guru_file_transfers_total",
      help: "file transfers by direction and audit outcome",
      labelNames: ["direction", "outcome"] as const,
      registers: [registry],
    }),
    unhandledRejections: new Counter({
      name: "guru_unhandled_rejections_total",
      help: "promise rejections nothing handled (each one a bug, logged with its cause); the process keeps serving",
      registers: [registry],
    }),
    securityAlerts: new Counter({
      name: "guru_security_alerts_total",
      help: "alerts raised, by kind (command_failures_technician, command_failures_agent, link_churn)",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
