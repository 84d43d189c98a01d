// Command jobs live in the `guru mcp` process: a job is one StreamCommand call
// whose output is appended to bounded per-stream buffers, so a command can
// outlive the tool call that started it and be paged by offset. Finished jobs
// stay readable for keepMs; a job holds its agent's tunnel lease until it ends.
import { randomBytes } from "node:crypto";
import { GuruError, isGuruError } from "../lib/errors.ts";
import type { Logger } from "../lib/logging.ts";
import type { AgentInfo, CommandOutcome, CommandSpec, GuruApi } from "./api.ts";
import { fromApiError, guruError, isStaleSession } from "./errors.ts";
import { createOutputBuffer, type OutputBuffer } from "./output-buffer.ts";
import type { TunnelManager } from "./tunnels.ts";

export type JobStatus = "running" | "exited" | "timed_out" | "canceled" | "killed" | "failed";

export interface Job {
  id: string;
  agent: { id: string; name: string };
  command: string;
  startedAt: Date;
  endedAt: Date | null;
  status: JobStatus;
  outcome: CommandOutcome | null;
  /** Why a failed job failed (it never produced a result). */
  error: GuruError | null;
  /** Any event arrived from the server (so the command was accepted). */
  started: boolean;
  stdout: OutputBuffer;
  stderr: OutputBuffer;
  done: Promise<void>;
  /** Waits until cond() holds, the job changes to make it hold, ms pass or signal aborts; answers cond(). */
  waitFor(cond: () => boolean, ms: number, signal?: AbortSignal): Promise<boolean>;
  cancel(): Promise<void>;
}

const statusOfReason: Record<CommandOutcome["reason"], JobStatus> = {
  exited: "exited",
  unknown: "exited",
  timed_out: "timed_out",
  canceled: "canceled",
  killed: "killed",
};

export function createJobStore(deps: {
  api: Pick<GuruApi, "streamCommand">;
  tunnels: TunnelManager;
  logger: Logger;
  bufferBytes: number;
  keepMs: number;
  maxJobs: number;
}) {
  const { api, tunnels, logger } = deps;
  const jobs = new Map<string, Job>();

  function makeRoom(): void {
    if (jobs.size < deps.maxJobs) return;
    const finished = [...jobs.values()]
      .filter((j): j is Job & { endedAt: Date } => j.endedAt !== null)
      .sort((a, b) => a.endedAt.getTime() - b.endedAt.getTime());
    if (finished.length === 0) {
      throw guruError(
        "too_large",
        `${jobs.size} commands are already running in this guru mcp`,
        "wait for one to end (get_command_output) or stop one with cancel_command, then start this one",
      );
    }
    jobs.delete(finished[0].id);
  }

  function start(agent: AgentInfo, spec: CommandSpec): Job {
    makeRoom();
    const controller = new AbortController();
    const waiters = new Set<() => void>();
    const changed = () => {
      for (const w of waiters) w();
      waiters.clear();
    };

    const job: Job = {
      id: `job-${randomBytes(5).toString("hex")}`,
      agent: { id: agent.id, name: agent.name },
      command: spec.command,
      startedAt: new Date(),
      endedAt: null,
      status: "running",
      outcome: null,
      error: null,
      started: false,
      stdout: createOutputBuffer(deps.bufferBytes),
      stderr: createOutputBuffer(deps.bufferBytes),
      done: Promise.resolve(),
      async waitFor(cond, ms, signal) {
        const deadline = Date.now() + ms;
        while (!cond() && job.endedAt === null && !signal?.aborted) {
          const left = deadline - Date.now();
          if (left <= 0) break;
          await new Promise<void>((resolve) => {
            const wake = () => {
              clearTimeout(timer);
              signal?.removeEventListener("abort", wake);
              waiters.delete(wake);
              resolve();
            };
            const timer = setTimeout(wake, left);
            signal?.addEventListener("abort", wake, { once: true });
            waiters.add(wake);
          });
        }
        return cond();
      },
      async cancel() {
        if (job.endedAt === null) controller.abort();
        await job.done;
      },
    };

    async function run(): Promise<void> {
      // A reused session may have been closed by the server (idle expiry, a
      // force-close): one retry on a fresh tunnel, only before anything ran.
      for (let attempt = 0; ; attempt++) {
        const lease = await tunnels.acquire(agent);
        try {
          for await (const event of api.streamCommand(lease.sessionId, spec, controller.signal)) {
            job.started = true;
            if (event.type === "output") (event.stream === "stderr" ? job.stderr : job.stdout).append(event.data);
            else {
              job.outcome = event.result;
              job.status = statusOfReason[event.result.reason];
            }
            changed();
          }
          return;
        } catch (err) {
          const e = fromApiError(err);
          if (attempt === 0 && !job.started && !controller.signal.aborted && isStaleSession(e)) {
            logger.info({ agent: agent.name, sessionId: lease.sessionId, message: e.message }, "tunnel gone; opening a new one");
            lease.invalidate();
            continue;
          }
          throw e;
        } finally {
          lease.release();
        }
      }
    }

    job.done = run()
      .then(() => {
        if (job.outcome === null) throw new GuruError("internal", "the command's stream ended without a result");
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) {
          job.status = "canceled";
          return;
        }
        job.status = "failed";
        job.error = isGuruError(err) ? err : fromApiError(err);
        if (job.error.kind === "internal") logger.error({ err: job.error.cause ?? job.error, job: job.id }, "command job failed");
      })
      .finally(() => {
        job.endedAt = new Date();
        logger.debug({ job: job.id, agent: agent.name, status: job.status }, "command job ended");
        changed();
        const evict = setTimeout(() => jobs.delete(job.id), deps.keepMs);
        evict.unref();
      });
    jobs.set(job.id, job);
    logger.debug({ job: job.id, agent: agent.name }, "command job started");
    return job;
  }

  return {
    start,
    get(jobId: string): Job {
      const job = jobs.get(jobId);
      if (job === undefined) {
        throw guruError(
          "not_found",
          `no job ${jobId}`,
          `jobs are kept ${Math.round(deps.keepMs / 60_000)} min after they end and are lost when guru mcp restarts; run the command again if you still need its output`,
        );
      }
      return job;
    },
    /** Forgets a job (a run_command that failed before it started has nothing to page). */
    forget(jobId: string): void {
      jobs.delete(jobId);
    },
    /** Cancels every running job and waits for them (on exit). */
    async cancelAll(): Promise<void> {
      await Promise.allSettled([...jobs.values()].map((j) => j.cancel()));
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;
