// Connect clients for the technician API, shared by the CLI and `guru mcp`.
// The token goes in the Authorization header of every call.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../gen/guru/api/v1/admin_pb.js";
import { AgentService } from "../gen/guru/api/v1/agents_pb.js";
import { ExecService } from "../gen/guru/api/v1/exec_pb.js";
import { FileService } from "../gen/guru/api/v1/files_pb.js";
import { SessionService } from "../gen/guru/api/v1/sessions_pb.js";
import { RecordingService } from "../gen/guru/api/v1/terminal_pb.js";
import { SystemService } from "../gen/guru/api/v1/system_pb.js";
import type { BulkEndpoint } from "./bulk-http.ts";

export interface ApiClients {
  agents: Client<typeof AgentService>;
  sessions: Client<typeof SessionService>;
  admin: Client<typeof AdminService>;
  exec: Client<typeof ExecService>;
  files: Client<typeof FileService>;
  recordings: Client<typeof RecordingService>;
  system: Client<typeof SystemService>;
  /** Where the same server's bulk path for file bytes is, with the same token (lib/bulk-http.ts). */
  endpoint: BulkEndpoint;
}

export function createApiClients(options: {
  url: string;
  token?: string /** Extra trusted CA (PEM) for https, beside the system's. */;
  ca?: string | Buffer;
}): ApiClients {
  const bearer: Interceptor = (next) => (req) => {
    if (options.token) req.header.set("authorization", `Bearer ${options.token}`);
    return next(req);
  };
  const transport = createConnectTransport({
    baseUrl: options.url,
    httpVersion: "1.1",
    useBinaryFormat: true,
    interceptors: [bearer],
    // No gzip: file bytes rarely compress, and zlib caps a transfer far below the link's speed.
    acceptCompression: [],
    readMaxBytes: 64 * 1024 * 1024,
    writeMaxBytes: 64 * 1024 * 1024,
    ...(options.ca ? { nodeOptions: { ca: options.ca } } : {}),
  });
  return {
    agents: createClient(AgentService, transport),
    sessions: createClient(SessionService, transport),
    admin: createClient(AdminService, transport),
    exec: createClient(ExecService, transport),
    files: createClient(FileService, transport),
    recordings: createClient(RecordingService, transport),
    system: createClient(SystemService, transport),
    endpoint: { url: options.url, token: options.token, ca: options.ca },
  };
}
