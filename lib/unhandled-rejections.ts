// A promise rejection nothing handled is a bug, but one in a single request
// or link: Node's default (exit) would let one broken or lying agent take the
// whole server down, every other agent's link with it. The long-running
// entry points (`guru server`, `guru start`, `guru agent`) log it with its
// cause, count it (on the server's /metrics) and keep serving.
import type { Logger } from "./logging.ts";

export type UnhandledRejectionListener = (reason: unknown, promise: Promise<unknown>) => void;

export function createUnhandledRejectionHandler(deps: { logger: Logger; onRejection?: () => void }): UnhandledRejectionListener {
  // Never throws: a throw in this listener would be an uncaught exception, which does exit.
  return (reason) => {
    deps.logger.error({ err: reason }, "unhandled promise rejection (a bug); the process keeps running");
    try {
      deps.onRejection?.();
    } catch (err) {
      deps.logger.error({ err }, "could not count an unhandled promise rejection");
    }
  };
}

/** Installs the handler on this process; returns the function that removes it. */
export function handleUnhandledRejections(deps: { logger: Logger; onRejection?: () => void }): () => void {
  const listener = createUnhandledRejectionHandler(deps);
  process.on("unhandledRejection", listener);
  return () => process.off("unhandledRejection", listener);
}
