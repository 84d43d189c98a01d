// The store: every repository over one Db. The only place SQL lives.
import type { Db } from "./db.ts";
import { createAgentsRepository, type AgentsRepository } from "./agents.ts";
import { createAuditRepository, type AuditRepository } from "./audit.ts";
import { createClusterNodesRepository, type ClusterNodesRepository } from "./cluster-nodes.ts";
import { createCommandsRepository, type CommandsRepository } from "./commands.ts";
import { createRateLimitsRepository, type RateLimitsRepository } from "./rate-limits.ts";
import { createSessionsRepository, type SessionsRepository } from "./sessions.ts";
import { createSystemAuditRepository, type SystemAuditRepository } from "./system-audit.ts";
import { createSigningKeysRepository, type SigningKeysRepository } from "./signing-keys.ts";
import { createTechniciansRepository, type TechniciansRepository } from "./technicians.ts";
import { createTerminalsRepository, type TerminalsRepository } from "./terminals.ts";
import { createTokensRepository, type TokensRepository } from "./tokens.ts";
import { createUploadsRepository, type UploadsRepository } from "./uploads.ts";
import { createIntegrationKeysRepository, type IntegrationKeysRepository } from "./integration-keys.ts";
import { createPartnerAgentsRepository, type PartnerAgentsRepository } from "./partner-agents.ts";
import { createPartnerSessionsRepository, type PartnerSessionsRepository } from "./partner-sessions.ts";
import { createViewerTokensRepository, type ViewerTokensRepository } from "./viewer-tokens.ts";

export interface Store {
  db: Db;
  agents: AgentsRepository;
  technicians: TechniciansRepository;
  tokens: TokensRepository;
  signingKeys: SigningKeysRepository;
  sessions: SessionsRepository;
  audit: AuditRepository;
  uploads: UploadsRepository;
  rateLimits: RateLimitsRepository;
  commands: CommandsRepository;
  // Partner integration (guru.integration.v1).
  integrationKeys: IntegrationKeysRepository;
  partnerAgents: PartnerAgentsRepository;
  partnerSessions: PartnerSessionsRepository;
  viewerTokens: ViewerTokensRepository;
  terminals: TerminalsRepository;
  systemAudit: SystemAuditRepository;
  clusterNodes: ClusterNodesRepository;
}

export function createStore(db: Db): Store {
  return {
    db,
    agents: createAgentsRepository(db),
    technicians: createTechniciansRepository(db),
    tokens: createTokensRepository(db),
    signingKeys: createSigningKeysRepository(db),
    sessions: createSessionsRepository(db),
    audit: createAuditRepository(db),
    uploads: createUploadsRepository(db),
    rateLimits: createRateLimitsRepository(db),
    commands: createCommandsRepository(db),
    integrationKeys: createIntegrationKeysRepository(db),
    partnerAgents: createPartnerAgentsRepository(db),
    partnerSessions: createPartnerSessionsRepository(db),
    viewerTokens: createViewerTokensRepository(db),
    terminals: createTerminalsRepository(db),
    systemAudit: createSystemAuditRepository(db),
    clusterNodes: createClusterNodesRepository(db),
  };
}

export type { Db, OpenDbOptions, QueryResult } from "./db.ts";
export type { MigrationsStatus } from "./migrate.ts";
export type { AgentRecord, AgentInventory } from "./agents.ts";
export type { TechnicianRecord, TechnicianRole } from "./technicians.ts";
export type { TokenRecord } from "./tokens.ts";
export type { SigningKeyRecord, PublicSigningKey, Jwk } from "./signing-keys.ts";
export type { SessionRecord, SessionStatus } from "./sessions.ts";
export type {
  AuditOutcome,
  TunnelAuditInput,
  TunnelAuditRecord,
  CommandAuditInput,
  CommandAuditRecord,
  CommandCompletion,
  FileAuditInput,
  FileAuditRecord,
  AuditFilter,
  SweepResult,
} from "./audit.ts";
export type { UploadInput, UploadRecord, UploadStatus } from "./uploads.ts";
export type { RateLimitResult } from "./rate-limits.ts";
export type { SystemAuditInput, SystemAuditRecord } from "./system-audit.ts";
export type { BeganCommand, BeginCommandInput } from "./commands.ts";
export type { TerminalAuditInput, TerminalCompletion, TerminalFilter, TerminalOutcome, TerminalRecord } from "./terminals.ts";
