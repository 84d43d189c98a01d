// The domain's view of the agents: what it may ask of one, in its own types.
// server/link implements it over the AgentRouter (in-process today; through a
// message bus when links live on other server processes), so nothing here
// knows about sockets, frames or generated code.

export interface TunnelRequest {
  sessionId: string;
  technicianId: string;
  technicianName: string;
}

export interface RemoteAgents {
  isOnline(agentId: string): boolean;
  /** When the agent was last heard from over its live link; undefined when it is offline. */
  lastSeen(agentId: string): Date | undefined;
  /** Resolves once the agent said TunnelReady; throws agent_offline, timeout or conflict (the agent refused). */
  openTunnel(agentId: string, request: TunnelRequest, timeoutMs: number): Promise<void>;
  /** Tells the agent to leave tunnel mode; best effort, never throws. */
  closeTunnel(agentId: string, sessionId: string, reason: string): Promise<void>;
  /** Drops the agent's link (its key was revoked). */
  disconnect(agentId: string, reason: string): void;
}
