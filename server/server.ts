// The composition root of `guru server`: database, auth, domain, agent links
// and the Connect routes on one listener. close() drains: stop accepting,
// end agent links and sessions, then the database.
import { createContextValues } from "@connectrpc/connect";
import type { ServerResponse } from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AgentService } from "../gen/guru/api/v1/agents_pb.js";
import { AdminService } from "../gen/guru/api/v1/admin_pb.js";
import { ExecService } from "../gen/guru/api/v1/exec_pb.js";
import { FileService } from "../gen/guru/api/v1/files_pb.js";
import { SessionService } from "../gen/guru/api/v1/sessions_pb.js";
import { RecordingService } from "../gen/guru/api/v1/terminal_pb.js";
import { SystemService } from "../gen/guru/api/v1/system_pb.js";
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
import { createFailureAlerts, createLinkChurnAlerts } from "./domain/alerts.ts";
import { createAuditRetention } from "./domain/audit-retention.ts";
import { createCommandService } from "./domain/commands.ts";
import { createFileService } from "./domain/files.ts";
import { createTechnicianRateLimit } from "./domain/rate-limit.ts";
import { createSessionWork } from "./domain/session-work.ts";
import { createRecordingService } from "./domain/recordings.ts";
import { createSessionService } from "./domain/sessions.ts";
import { createTerminalService } from "./domain/terminals.ts";
import { createSystemService } from "./domain/system.ts";
import { createUploadService } from "./domain/uploads.ts";
import { createOperationalRoutes } from "./http/health.ts";
import { createRecordingRoutes } from "./http/recording-routes.ts";
import { createTransferRoutes } from "./http/transfer-routes.ts";
import { startListener } from "./http/listener.ts";
import { createTerminalSocketServer, technicianAuthenticator } from "./http/terminal-socket.ts";
import { joinCluster, type Cluster } from "./cluster/join-cluster.ts";
import { createViewerAuthenticator } from "./http/viewer-authenticator.ts";
import { createViewerRoutes, setDefaultSecurityHeaders } from "./http/viewer-routes.ts";
import { createAgentRegistry, createInProcessRouter } from "./link/agent-router.ts";
import { createAgentSocketServer, wireProtocol } from "./link/agent-socket-server.ts";
import { createAgentFiles } from "./link/agent-files.ts";
import { createRemoteAgents } from "./link/remote-agents.ts";
import { createRemoteCommands } from "./link/remote-commands.ts";
import { createRemoteTerminals } from "./link/remote-terminals.ts";
import { createRemoteSystem } from "./link/remote-system.ts";
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
import { serveStrict } from "./rpc/strict-enums.ts";
import { integrationServiceImpl } from "./rpc/integration-service.ts";
import { recordingServiceImpl } from "./rpc/recording-service.ts";
import { sessionServiceImpl } from "./rpc/session-service.ts";
import { ensurePrivateDir } from "../lib/private-dir.ts";
import { systemServiceImpl } from "./rpc/system-service.ts";
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
  // The embedded database (with the token signing keys) and the admin token live here.
  await ensurePrivateDir(config.dataDir, "data dir");
  const db = givenDb ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger }));
  await migrate(db);
  const store = createStore(db);
  const metrics = createMetrics();
  const keys = await loadOrCreateSigningKeys(store);
  let cluster: Cluster | undefined;
  const tokens = createTokenService({
    store,
    keys,
    defaultTtlSeconds: config.tokenTtlSeconds,
    checkCacheMs: config.tokenCheckCacheMs,
    onRevoked: (what) => cluster?.tokensRevoked(what),
  });

  const registry = createAgentRegistry();
  // With NATS, this process is one node of a cluster and reaches agents held by the others through it.
  const natsUrl = config.natsUrl;
  cluster =
    natsUrl === undefined ? undefined : await joinCluster({ config: { ...config, natsUrl }, store, registry, limits, logger, metrics: metrics.registry });
  const router = cluster?.router ?? createInProcessRouter(registry);
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
  const consent = createRemoteConsent(router);
  const sessions = createSessionService({
    store,
    agents: remoteAgents,
    consent: { port: consent, timeoutMs: config.consentTimeoutMs },
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
    consent,
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
  const files = createFileService({
    store,
    sessions,
    agents: agentFiles,
    logger: logger.child({ part: "files" }),
    work,
    opRateLimit: fileOpRateLimit,
    onTransfer,
  });
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
    // Idle expiry counts from the latest command to within a tenth of the idle limit (at most a second).
    sessionTouchMs: Math.min(1000, Math.floor(config.sessionIdleMs / 10)),
  });
  const terminals = createTerminalService({
    store,
    sessions,
    remote: createRemoteTerminals(router),
    logger: logger.child({ part: "terminals" }),
    limits: {
      rateLimit: config.terminalRateLimit,
      rateWindowMs: config.commandRateWindowMs,
      maxRecordingOutputBytes: config.recordingMaxOutputBytes,
      startTimeoutMs: config.tunnelOpenTimeoutMs,
    },
  });
  const recordings = createRecordingService({ store });
  const authenticate = createViewerAuthenticator({
    viewerTokens,
    store,
    events: sessionEvents,
    technician: technicianAuthenticator(tokens),
    // The consent prompt's own timeout decides; this only bounds a wait nobody ends.
    maxPendingWaitMs: config.consentTimeoutMs + config.tunnelOpenTimeoutMs,
  });
  const terminalSockets = createTerminalSocketServer({ terminals, authenticate, logger: logger.child({ part: "terminal-socket" }) });
  const viewer = createViewerRoutes({
    keyOrigins: async () => (await store.integrationKeys.list()).filter((k) => k.revokedAt === null).flatMap((k) => k.allowedOrigins),
    frameAncestors: config.viewerFrameAncestors,
  });
  const system = createSystemService({
    store,
    sessions,
    remote: createRemoteSystem(router),
    logger: logger.child({ part: "system" }),
    limits: { rateLimit: config.commandRateLimit, rateWindowMs: config.commandRateWindowMs, defaultWaitMs: 30_000, maxWaitMs: 300_000 },
  });
  const auditRetention = createAuditRetention({
    store,
    logger: logger.child({ part: "audit-retention" }),
    retentionDays: config.auditRetentionDays,
    rateWindowMs: config.commandRateWindowMs,
    sweepMore: (olderThanMs) => store.integrationKeys.sweepAudit(olderThanMs),
  });

  if (cluster) {
    // Other nodes hold links and tunnels of their own: only what this node held is reconciled.
    try {
      await cluster.start({ agentDisconnected: (agentId, reason) => sessions.agentDisconnected(agentId, reason), forgetTokens: (what) => tokens.forget(what) });
    } catch (err) {
      // Nothing may keep the process alive after a refused start.
      await cluster.bus.close();
      if (givenDb === undefined) await db.close();
      throw err;
    }
  } else {
    // What a previous process left behind has no live link here.
    await store.agents.markAllOffline();
    const reconciled = await sessions.reconcileAtStart();
    if (reconciled > 0) logger.info({ sessions: reconciled }, "closed tunnels left active by a previous server process");
  }
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
    churn: createLinkChurnAlerts({
      store,
      logger: logger.child({ part: "alerts" }),
      threshold: config.linkChurnThreshold,
      windowMs: config.linkChurnWindowMs,
      onAlert: (kind) => metrics.securityAlerts.inc({ kind }),
    }),
    onDisconnected: (agentId, reason) => sessions.agentDisconnected(agentId, reason),
    onHello: (agentId, hello) => store.partnerAgents.setConsentPolicy(agentId, consentPolicyOf(hello)),
    onConnected: (agentId) => {
      void partnerSessions.agentConnected(agentId).catch((err) => logger.error({ err, agentId }, "binding pending sessions failed"));
    },
    ownership: cluster?.node,
  });

  const rpcLogger = logger.child({ part: "rpc" });
  const rpc = connectNodeAdapter({
    interceptors: [errorInterceptor(rpcLogger), authInterceptor(tokens, createIntegrationKeyCheck({ store }), authFailures)],
    contextValues: (req) => createContextValues().set(clientAddressKey, clientAddress(req, config.trustedProxies)),
    readMaxBytes: 16 * 1024 * 1024,
    routes(r) {
      serveStrict(r, AgentService, agentServiceImpl({ store, agents: remoteAgents }));
      serveStrict(r, SessionService, sessionServiceImpl(sessions));
      serveStrict(r, ExecService, execServiceImpl(commands));
      serveStrict(r, FileService, fileServiceImpl(files, uploads));
      serveStrict(r, RecordingService, recordingServiceImpl(recordings));
      serveStrict(r, SystemService, systemServiceImpl(system));
      serveStrict(r, AdminService, adminServiceImpl(admin, sessions, integrationKeyAdmin));
      serveStrict(
        r,
        IntegrationService,
        integrationServiceImpl({
          info: {
            contractVersion: integrationContractVersion,
            serverVersion: version,
            features: ["tunnels", "exec", "files", "services", "registry", "terminal", "consent", "viewer_tokens"],
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
  const transfers = createTransferRoutes({
    tokens,
    uploads,
    files,
    logger: logger.child({ part: "transfer" }),
    authFailures,
    trustedProxies: config.trustedProxies,
  });
  const recordingRoutes = createRecordingRoutes({
    tokens,
    recordings,
    logger: logger.child({ part: "recordings" }),
    authFailures,
    trustedProxies: config.trustedProxies,
  });
  const operational = createOperationalRoutes({
    db,
    metrics: metrics.registry,
    logger: logger.child({ part: "http" }),
    metricsToken: config.metricsToken,
    notReady: () => (draining ? "draining" : cluster?.notReady()),
  });

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
      setDefaultSecurityHeaders(res);
      operational(req, res)
        .then(async (handled) => handled || (await viewer(req, res)) || (await transfers(req, res)) || (await recordingRoutes(req, res)))
        .then(
          (handled) => {
            if (!handled) rpc(req, res);
          },
          (err: unknown) => {
            // /metrics, /readyz or the viewer failed in a way they do not answer themselves.
            logger.error({ err, url: req.url }, "operational route failed");
            // Both response kinds have these; their overloads do not unify in TypeScript.
            const out = res as ServerResponse;
            if (!out.headersSent) out.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
            out.end("internal error\n");
          },
        );
    },
    onUpgrade(req, socket, head) {
      // Node hands an upgrade's socket over with no 'error' listener: a peer
      // that resets it while we refuse or check a key (a balancer does, after
      // a refusal) would otherwise crash the process. The WebSocket, once
      // accepted, handles its socket's errors itself.
      socket.on("error", (err) => logger.debug({ err }, "upgrade socket error"));
      const path = (req.url ?? "").split("?")[0];
      if (path === "/terminal") {
        terminalSockets.handleUpgrade(req, socket, head);
        return;
      }
      if (path !== "/agent") {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      agentSockets.handleUpgrade(req, socket, head).catch((err: unknown) => {
        logger.error({ err }, "agent upgrade failed");
        socket.destroy();
      });
    },
  });

  const sweep = setInterval(() => {
    sessions.expireIdle().catch((err) => logger.error({ err }, "idle session sweep failed"));
    metrics.agentsConnected.set(registry.size);
  }, config.sessionSweepIntervalMs);
  sweep.unref();
  auditRetention.start();
  const uploadSweep = setInterval(() => {
    uploads.sweepAbandoned().catch((err) => logger.error({ err }, "abandoned upload sweep failed"));
  }, config.uploadSweepIntervalMs);
  uploadSweep.unref();

  publicUrl ??= listener.url;
  logger.info({ url: listener.url, database: db.kind }, "server listening");

  let draining = false;
  /** Stops taking agent links and hands the current ones back (agents reconnect through the load balancer to another node). */
  async function drain(): Promise<void> {
    draining = true;
    cluster?.node.setDraining(true);
    agentSockets.stopAccepting();
    const links = registry.all();
    logger.info({ agents: links.length }, "draining: handing agent links to other nodes");
    for (const entry of links) entry.link.close(closeCodes.goingAway, "this server node is draining; reconnect to another");
    await Promise.allSettled(links.map((e) => e.link.closed));
  }

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
      await terminalSockets.close();
      const links = registry.all();
      for (const entry of links) entry.link.close(closeCodes.goingAway, "the server is shutting down");
      await Promise.allSettled(links.map((e) => e.link.closed));
      await listener.close();
      await agentSockets.close();
      await commands.drain();
      await terminals.drain();
      if (cluster) {
        // Only this node's own agents and tunnels: the others carry on.
        await cluster.close();
      } else {
        await store.sessions.closeAllActive("server shut down");
        await store.agents.markAllOffline();
      }
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
    terminals,
    recordings,
    files,
    uploads,
    system,
    work,
    authFailures,
    auditRetention,
    registry,
    router,
    metrics,
    bootstrapAdmin,
    cluster,
    drain,
    partnerSessions,
    sessionEvents,
    viewerTokens,
    close,
  };
}

export type GuruServer = Awaited<ReturnType<typeof startServer>>;
