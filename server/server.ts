// The composition root of `guru server`: database, auth, domain, agent links
// and the Connect routes on one listener. close() drains: stop accepting,
// end agent links and sessions, then the database.
import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AgentService } from "../gen/guru/api/v1/agents_pb.js";
import { AdminService } from "../gen/guru/api/v1/admin_pb.js";
import { ExecService } from "../gen/guru/api/v1/exec_pb.js";
import { FileService } from "../gen/guru/api/v1/files_pb.js";
import { SessionService } from "../gen/guru/api/v1/sessions_pb.js";
import { IntegrationService } from "../gen/guru/integration/v1/integration_pb.js";
import type { Logger } from "../lib/logging.ts";
import { closeCodes } from "../lib/wire/close-codes.ts";
import { defaultWireLimits, type WireLimits } from "../lib/wire/limits.ts";
import { contractVersion } from "../lib/contract-version.ts";
import { version } from "../lib/version.ts";
import { clientAddress, createAuthFailureLimit } from "./auth/auth-failures.ts";
import { ensureAdmin } from "./auth/bootstrap.ts";
import { loadOrCreateSigningKeys } from "./auth/signing-keys.ts";
import { createTokenService } from "./auth/tokens.ts";
import type { ServerConfig } from "./config.ts";
import { createAdminService } from "./domain/admin.ts";
import { createFailureAlerts } from "./domain/alerts.ts";
import { createAuditRetention } from "./domain/audit-retention.ts";
import { createCommandService } from "./domain/commands.ts";
import { createFileService } from "./domain/files.ts";
import { createTechnicianRateLimit } from "./domain/rate-limit.ts";
import { createSessionWork } from "./domain/session-work.ts";
import { createSessionService } from "./domain/sessions.ts";
import { createUploadService } from "./domain/uploads.ts";
import { createOperationalRoutes } from "./http/health.ts";
import { createTransferRoutes } from "./http/transfer-routes.ts";
import { startListener } from "./http/listener.ts";
import { createAgentRegistry, createInProcessRouter } from "./link/agent-router.ts";
import { createAgentSocketServer, wireProtocol } from "./link/agent-socket-server.ts";
import { createAgentFiles } from "./link/agent-files.ts";
import { createRemoteAgents } from "./link/remote-agents.ts";
import { createRemoteCommands } from "./link/remote-commands.ts";
import { createMetrics } from "./metrics.ts";
import { createIntegrationKeyCheck } from "./auth/integration-keys.ts";
import { createViewerTokens, maxViewerTokenTtlSeconds } from "./auth/viewer-tokens.ts";
import { createIntegrationKeyAdmin } from "./domain/integration-keys.ts";
import { createPartnerAgents } from "./domain/partner-agents.ts";
import { createPartnerAudit } from "./domain/partner-audit.ts";
import { createPartnerSessions, type PartnerSessions } from "./domain/partner-sessions.ts";
import { createSessionEvents } from "./domain/session-events.ts";
import { consentPolicyOf, createRemoteConsent } from "./link/remote-consent.ts";
import { integrationContractVersion, packageVersions } from "../lib/integration-contract-version.ts";
import { adminServiceImpl } from "./rpc/admin-service.ts";
import { agentServiceImpl } from "./rpc/agent-service.ts";
import { execServiceImpl } from "./rpc/exec-service.ts";
import { fileServiceImpl } from "./rpc/file-service.ts";
import { clientAddressKey } from "./rpc/context.ts";
import { authInterceptor, errorInterceptor } from "./rpc/interceptors.ts";
import { integrationServiceImpl } from "./rpc/integration-service.ts";
import { sessionServiceImpl } from "./rpc/session-service.ts";
import { openDb, type Db } from "./store/db.ts";
import { createStore } from "./store/index.ts";
import { migrate } from "./store/migrate.ts";


export interface StartServerOptions {
  config: ServerConfig;
  logger: Logger;
  wireLimits?: Partial<WireLimits>;
  /** An open database to use instead of opening one from the config (tests); the caller closes it. */
  db?: Db;
}

export async function startServer({ config, logger, wireLimits, db: givenDb }: StartServerOptions) {
  const limits = { ...defaultWireLimits, ...wireLimits };
  const db = givenDb ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger }));
  await migrate(db);
  const store = createStore(db);
  const metrics = createMetrics();
  const keys = await loadOrCreateSigningKeys(store);
  const tokens = createTokenService({ store, keys, defaultTtlSeconds: config.tokenTtlSeconds, checkCacheMs: config.tokenCheckCacheMs });

  const registry = createAgentRegistry();
  const router = createInProcessRouter(registry);
  const remoteAgents = createRemoteAgents(router);
  const work = createSessionWork();
  const authFailures = createAuthFailureLimit({ limit: config.authFailureLimit, windowMs: config.authFailureWindowMs, blockMs: config.authBlockMs });
  const fileOpRateLimit = createTechnicianRateLimit({
    store,
    key: "file_op",
    what: "file operations",
    setting: "GURU_FILE_OP_RATE_LIMIT",
    limit: config.fileOpRateLimit,
    windowMs: config.fileOpRateWindowMs,
  });
  const sessions = createSessionService({
    store,
    agents: remoteAgents,
    logger: logger.child({ part: "sessions" }),
    tunnelOpenTimeoutMs: config.tunnelOpenTimeoutMs,
    sessionIdleMs: config.sessionIdleMs,
    work,
    openRateLimit: createTechnicianRateLimit({
      store,
      key: "open_tunnel",
      what: "tunnel opens",
      setting: "GURU_TUNNEL_OPEN_RATE_LIMIT",
      limit: config.tunnelOpenRateLimit,
      windowMs: config.tunnelOpenRateWindowMs,
    }),
    onOpened: () => metrics.tunnelsOpened.inc(),
    // Bound below: partner sessions need the session service first.
    onClosed: (closed, reason) => partnerSessions.sessionsClosed(closed, reason),
  });
  const sessionEvents = createSessionEvents();
  const partnerSessions: PartnerSessions = createPartnerSessions({
    store,
    sessions,
    agents: remoteAgents,
    consent: createRemoteConsent(router),
    events: sessionEvents,
    logger: logger.child({ part: "partner-sessions" }),
    consentTimeoutMs: config.consentTimeoutMs,
    tunnelOpenTimeoutMs: config.tunnelOpenTimeoutMs,
  });
  const partnerAgents = createPartnerAgents({ store, agents: remoteAgents, sessions, partnerSessions, logger: logger.child({ part: "partner-agents" }) });
  const integrationKeyAdmin = createIntegrationKeyAdmin({ store, partnerSessions, logger: logger.child({ part: "integration-keys" }) });
  // The listener's URL is known once it listens; viewer URLs are built later than that.
  let publicUrl = config.publicUrl;
  const viewerUrl = (sessionId: string) => `${(publicUrl ?? "").replace(/\/+$/, "")}/viewer/?session=${encodeURIComponent(sessionId)}`;
  const viewerTokens = createViewerTokens({ store, keys, viewerUrl });
  // Ends WatchSessions streams when the server closes, so the listener can.
  const shutdown = new AbortController();
  const admin = createAdminService({ store, tokens, agents: remoteAgents, sessions, logger: logger.child({ part: "admin" }) });
  const agentFiles = createAgentFiles(router);
  const onTransfer = (direction: "upload" | "download", outcome: string, bytes: number) => {
    metrics.fileBytes.inc({ direction }, bytes);
    metrics.fileTransfers.inc({ direction, outcome });
  };
  const files = createFileService({ store, sessions, agents: agentFiles, logger: logger.child({ part: "files" }), work, opRateLimit: fileOpRateLimit, onTransfer });
  const uploads = createUploadService({
    store,
    sessions,
    agents: agentFiles,
    logger: logger.child({ part: "uploads" }),
    abandonedAfterMs: config.uploadAbandonedMs,
    work,
    maxActivePerTechnicianAgent: config.maxUploadsPerTechnicianAgent,
    opRateLimit: fileOpRateLimit,
    onTransfer,
  });
  const commands = createCommandService({
    store,
    sessions,
    remote: createRemoteCommands(router),
    alerts: createFailureAlerts({
      store,
      logger: logger.child({ part: "alerts" }),
      threshold: config.failureAlertThreshold,
      windowMs: config.failureAlertWindowMs,
      onAlert: (kind) => metrics.securityAlerts.inc({ kind }),
    }),
    logger: logger.child({ part: "commands" }),
    limits: {
      defaultTimeoutMs: config.execDefaultTimeoutMs,
      maxTimeoutMs: config.execMaxTimeoutMs,
      maxOutputBytes: config.execMaxOutputBytes,
      rateLimit: config.commandRateLimit,
      rateWindowMs: config.commandRateWindowMs,
    },
    work,
    onAudited: (outcome) => metrics.commands.inc({ outcome }),
  });
  const auditRetention = createAuditRetention({
    store,
    logger: logger.child({ part: "audit-retention" }),
    retentionDays: config.auditRetentionDays,
    rateWindowMs: config.commandRateWindowMs,
    sweepMore: (olderThanMs) => store.integrationKeys.sweepAudit(olderThanMs),
  });

  // What a previous process left behind has no live link here.
  await store.agents.markAllOffline();
  const reconciled = await sessions.reconcileAtStart();
  if (reconciled > 0) logger.info({ sessions: reconciled }, "closed tunnels left active by a previous server process");
  const bootstrapAdmin = await ensureAdmin({ store, tokens, dataDir: config.dataDir, logger });

  const agentSockets = createAgentSocketServer({
    store,
    registry,
    limits,
    logger: logger.child({ part: "link" }),
    serverVersion: version,
    maxConcurrentHandshakes: config.maxConcurrentHandshakes,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    heartbeatDeadlineMs: config.heartbeatDeadlineMs,
    authFailures,
    trustedProxies: config.trustedProxies,
    onDisconnected: (agentId, reason) => sessions.agentDisconnected(agentId, reason),
    onHello: (agentId, hello) => store.partnerAgents.setConsentPolicy(agentId, consentPolicyOf(hello)),
    onConnected: (agentId) => {
      void partnerSessions.agentConnected(agentId).catch((err) => logger.error({ err, agentId }, "binding pending sessions failed"));
    },
  });

  const rpcLogger = logger.child({ part: "rpc" });
  const rpc = connectNodeAdapter({
    interceptors: [errorInterceptor(rpcLogger), authInterceptor(tokens, createIntegrationKeyCheck({ store }), authFailures)],
    contextValues: (req) => createContextValues().set(clientAddressKey, clientAddress(req, config.trustedProxies)),
    readMaxBytes: 16 * 1024 * 1024,
    routes(r) {
      r.service(AgentService, agentServiceImpl({ store, agents: remoteAgents }));
      r.service(SessionService, sessionServiceImpl(sessions));
      r.service(ExecService, execServiceImpl(commands));
      r.service(FileService, fileServiceImpl(files, uploads));
      r.service(AdminService, adminServiceImpl(admin, sessions, integrationKeyAdmin));
      r.service(
        IntegrationService,
        integrationServiceImpl({
          info: {
            contractVersion: integrationContractVersion,
            serverVersion: version,
            features: ["tunnels", "exec", "files", "consent", "viewer_tokens"],
            wireProtocol,
            packageVersions: packageVersions(contractVersion),
            limits: {
              maxUploadChunkBytes: 16 * 1024 * 1024,
              maxCommandOutputBytes: config.execMaxOutputBytes,
              sessionIdleMs: config.sessionIdleMs,
              consentTimeoutMs: config.consentTimeoutMs,
              maxViewerTokenTtlSeconds,
            },
          },
          partnerAgents,
          partnerSessions,
          events: sessionEvents,
          viewerTokens,
          audit: createPartnerAudit(store),
          viewerUrl,
          watchHeartbeatMs: config.watchHeartbeatMs,
          shutdownSignal: shutdown.signal,
        }),
      );
    },
  });
  const transfers = createTransferRoutes({ tokens, uploads, files, logger: logger.child({ part: "transfer" }), authFailures, trustedProxies: config.trustedProxies });
  const operational = createOperationalRoutes({ db, metrics: metrics.registry, logger: logger.child({ part: "http" }), metricsToken: config.metricsToken });

  const listener = await startListener({
    host: config.host,
    port: config.port,
    tls: config.tlsCertFile && config.tlsKeyFile ? { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile } : undefined,
    timeouts: {
      headersTimeoutMs: config.httpHeadersTimeoutMs,
      requestTimeoutMs: config.httpRequestTimeoutMs,
      keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
      http2IdleTimeoutMs: config.http2IdleTimeoutMs,
    },
    onRequest(req, res) {
      void operational(req, res)
        .then((handled) => handled || transfers(req, res))
        .then((handled) => {
          if (!handled) rpc(req, res);
        });
    },
    onUpgrade(req, socket, head) {
      if ((req.url ?? "").split("?")[0] !== "/agent") {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      void agentSockets.handleUpgrade(req, socket, head);
    },
  });

  const sweep = setInterval(() => {
    void sessions.expireIdle().catch((err) => logger.error({ err }, "idle session sweep failed"));
    metrics.agentsConnected.set(registry.size);
  }, config.sessionSweepIntervalMs);
  sweep.unref();
  auditRetention.start();
  const uploadSweep = setInterval(() => {
    void uploads.sweepAbandoned().catch((err) => logger.error({ err }, "abandoned upload sweep failed"));
  }, config.uploadSweepIntervalMs);
  uploadSweep.unref();

  publicUrl ??= listener.url;
  logger.info({ url: listener.url, database: db.kind }, "server listening");

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      clearInterval(sweep);
      await auditRetention.close();
      clearInterval(uploadSweep);
      // Committed offsets to the database before the links go: a resume after the restart starts there.
      await uploads.close();
      agentSockets.stopAccepting();
      shutdown.abort();
      const links = registry.all();
      for (const entry of links) entry.link.close(closeCodes.goingAway, "the server is shutting down");
      await Promise.allSettled(links.map((e) => e.link.closed));
      await listener.close();
      await agentSockets.close();
      await commands.drain();
      await store.sessions.closeAllActive("server shut down");
      await store.agents.markAllOffline();
      if (givenDb === undefined) await db.close();
    })();
    return closing;
  }

  return {
    url: listener.url,
    store,
    tokens,
    sessions,
    admin,
    commands,
    files,
    uploads,
    work,
    authFailures,
    auditRetention,
    registry,
    router,
    metrics,
    bootstrapAdmin,
    partnerSessions,
    sessionEvents,
    viewerTokens,
    close,
  };
}

export type GuruServer = Awaited<ReturnType<typeof startServer>>;
