// One control action on one service, the same for every service manager:
// read the state before, project what the action leads to, stop there on a
// dry run, otherwise ask the manager and poll until the service gets there
// or the wait runs out.
import type { ServiceAction, ServiceBackend, ServiceInfo } from "./types.ts";

export interface ControlOutcome {
  before: ServiceInfo;
  /** After a dry run: the projection. */
  after: ServiceInfo;
  dryRun: boolean;
  changed: boolean;
  /** False when waitMs ran out before the service reached the projected state. */
  settled: boolean;
}

const defaultControlWaitMs = 30_000;
const maxControlWaitMs = 300_000;
const pollIntervalMs = 100;

/** The state an action leads to. */
function projectAction(before: ServiceInfo, action: ServiceAction): ServiceInfo {
  switch (action) {
    case "start":
    case "restart":
      return { ...before, state: "running" };
    case "stop":
      return { ...before, state: "stopped", pid: 0 };
    case "enable":
      return { ...before, startMode: "automatic" };
    case "disable":
      return { ...before, startMode: "disabled" };
  }
}

function reached(current: ServiceInfo, target: ServiceInfo, action: ServiceAction, before: ServiceInfo): boolean {
  if (action === "enable" || action === "disable") return current.startMode === target.startMode;
  if (current.state !== target.state) return false;
  // A restart is done when a new process runs (where the pid is known).
  if (action === "restart" && before.pid !== 0 && current.pid !== 0) return current.pid !== before.pid;
  return true;
}

export async function controlService(
  backend: ServiceBackend,
  request: { name: string; action: ServiceAction; dryRun: boolean; waitMs: number },
  signal?: AbortSignal,
): Promise<ControlOutcome> {
  const { name, action, dryRun } = request;
  const waitMs = Math.min(request.waitMs > 0 ? request.waitMs : defaultControlWaitMs, maxControlWaitMs);
  const before = await backend.get(name);
  const target = projectAction(before, action);
  const alreadyThere = action !== "restart" && reached(before, target, action, before);
  if (dryRun) return { before, after: target, dryRun: true, changed: !alreadyThere, settled: true };
  if (alreadyThere) return { before, after: before, dryRun: false, changed: false, settled: true };

  const deadline = Date.now() + waitMs;
  await backend.perform(name, action, { waitMs });
  let current = await backend.get(name);
  while (!reached(current, target, action, before) && Date.now() < deadline && !signal?.aborted) {
    await new Promise((r) => setTimeout(r, pollIntervalMs));
    current = await backend.get(name);
  }
  return { before, after: current, dryRun: false, changed: true, settled: reached(current, target, action, before) };
}

/** Case-insensitive substring of the name or the display name. */
export function matchesFilter(service: ServiceInfo, filter: string): boolean {
  if (filter === "") return true;
  const f = filter.toLowerCase();
  return service.name.toLowerCase().includes(f) || service.displayName.toLowerCase().includes(f);
}
