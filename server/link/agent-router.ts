// The one way to reach an agent. Every call that needs an agent goes through
// an AgentRouter: today the link is in this process; with several servers
// behind a load balancer an implementation over a message bus forwards the
// same calls to the process holding the link, and nothing above changes.
import type { Frame, ChannelOpen } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { Channel, Link } from "../../lib/wire/link.ts";

export interface AgentRouter {
  isOnline(agentId: string): boolean;
  /** When the agent's link last heard from it; undefined when it has no link. */
  lastSeen(agentId: string): Date | undefined;
  /** Opens an operation channel to the agent; throws agent_offline when it has no link. */
  openChannel(agentId: string, open: ChannelOpen, options?: { bulk?: boolean }): Channel;
  /** Sends a control frame and waits for the first control frame `match` accepts. */
  request(agentId: string, kind: Frame["kind"], match: (frame: Frame) => boolean, timeoutMs: number): Promise<Frame>;
  /** Sends a control frame, if the agent is online. */
  notify(agentId: string, kind: Frame["kind"]): boolean;
  /** Closes the agent's link with a close code and reason, if it has one here. */
  disconnect(agentId: string, code: number, reason: string): void;
}

/** A live link as the registry holds it. */
export interface AgentLinkEntry {
  agentId: string;
  name: string;
  link: Link;
  /** Control frames are offered to waiters first. */
  waiters: Set<(frame: Frame) => boolean>;
}

export function createAgentRegistry() {
  const links = new Map<string, AgentLinkEntry>();
  return {
    get: (agentId: string) => links.get(agentId),
    /** Registers a link; returns the entry it replaced, if any. */
    set(entry: AgentLinkEntry): AgentLinkEntry | undefined {
      const previous = links.get(entry.agentId);
      links.set(entry.agentId, entry);
      return previous;
    },
    /** Removes the entry only if it is still the current one (a replaced link must not unregister its successor). */
    remove(entry: AgentLinkEntry): boolean {
      if (links.get(entry.agentId) !== entry) return false;
      links.delete(entry.agentId);
      return true;
    },
    all: () => [...links.values()],
    get size() {
      return links.size;
    },
  };
}

export type AgentRegistry = ReturnType<typeof createAgentRegistry>;

export function createInProcessRouter(registry: AgentRegistry): AgentRouter {
  function entryOf(agentId: string): AgentLinkEntry {
    const entry = registry.get(agentId);
    if (entry === undefined) throw new GuruError("agent_offline", `agent ${agentId} is not connected`, { metadata: { agentId } });
    return entry;
  }

  return {
    isOnline: (agentId) => registry.get(agentId) !== undefined,
    lastSeen: (agentId) => registry.get(agentId)?.link.lastReceivedAt,
    openChannel: (agentId, open, options) => entryOf(agentId).link.openChannel(open, options),
    disconnect(agentId, code, reason) {
      registry.get(agentId)?.link.close(code, reason);
    },
    notify(agentId, kind) {
      const entry = registry.get(agentId);
      if (entry === undefined) return false;
      entry.link.sendControl(kind);
      return true;
    },
    request(agentId, kind, match, timeoutMs) {
      const entry = entryOf(agentId);
      return new Promise<Frame>((resolve, reject) => {
        const waiter = (frame: Frame) => {
          if (!match(frame)) return false;
          done();
          resolve(frame);
          return true;
        };
        const timer = setTimeout(() => {
          done();
          reject(new GuruError("timeout", `agent ${entry.name} did not answer within ${timeoutMs} ms`, { metadata: { agentId, timeoutMs } }));
        }, timeoutMs);
        const onClosed = () => {
          done();
          reject(new GuruError("agent_offline", `agent ${entry.name} disconnected`, { metadata: { agentId } }));
        };
        const done = () => {
          clearTimeout(timer);
          entry.waiters.delete(waiter);
          entry.link.closed.then(undefined, () => undefined);
          closedListeners.delete(onClosed);
        };
        const closedListeners = closeListenersOf(entry);
        closedListeners.add(onClosed);
        entry.waiters.add(waiter);
        entry.link.sendControl(kind);
      });
    },
  };
}

// Waiters learn of a closed link through one listener per entry.
const closeListeners = new WeakMap<AgentLinkEntry, Set<() => void>>();
function closeListenersOf(entry: AgentLinkEntry): Set<() => void> {
  let set = closeListeners.get(entry);
  if (set === undefined) {
    const listeners = new Set<() => void>();
    set = listeners;
    closeListeners.set(entry, listeners);
    // closed never rejects, and the listeners only settle their own request's promise.
    entry.link.closed
      .then(() => {
        for (const l of [...listeners]) l();
      })
      .catch(() => undefined);
  }
  return set;
}
