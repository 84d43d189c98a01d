// GET /recordings/{id}, the recording as an asciicast file for the viewer's
// replay, over real HTTP against a real server, database and agent: the
// owner and an admin read it byte for byte as RecordingService streams it;
// every refusal answers its code and reason, and reads nothing.
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionMode } from "../../gen/guru/integration/v1/sessions_pb.js";
import { parseAsciicast } from "../../lib/asciicast.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { createIntegrationClient, type IntegrationClient } from "../support/integration-client.ts";
import { openShell, terminalAgentEnv } from "../support/terminal-helpers.ts";

const origin = "https://rmm.example.com";

describeDatabases("recording route", (kind) => {
  let h: TestServer;
  let partner: IntegrationClient;
  let integrationKey: string;
  let sessionId: string;
  let recordingId: string;
  let ownerToken: string;

  beforeAll(async () => {
    h = await startTestServer({ kind });
    ({ key: integrationKey } = await h.admin.admin.createIntegrationKey({ name: "acme", allowedOrigins: [origin] }));
    partner = createIntegrationClient(h.url, integrationKey);
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "pc-rec" });
    await (await h.spawnAgent({ agentId, agentKey, env: await terminalAgentEnv(h) })).waitOnline();
    const { session } = await partner.startRemoteControl({ agent: { ref: { case: "externalId", value: "pc-rec" } }, mode: SessionMode.UNATTENDED });
    sessionId = session!.sessionId;
    const viewerToken = (await partner.mintViewerToken({ sessionId, origin })).token;
    const shell = await openShell(h.url, { token: "", sessionId: "", viewerToken, command: "echo recorded-$((6+1))" }, { origin });
    await shell.until(/recorded-7/);
    await shell.conn.exit;
    await h.server.terminals.drain();
    recordingId = shell.conn.opened.terminalId;
    // The partner session's technician, with a token of their own.
    const technicianId = (await h.server.store.partnerSessions.get(sessionId))!.technicianId;
    ownerToken = (await h.admin.admin.issueToken({ technicianId })).token;
  }, 90_000);
  afterAll(() => h?.close());

  const get = (id: string, headers: Record<string, string> = {}, method = "GET") => fetch(`${h.url}/recordings/${id}`, { method, headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const refusal = async (res: Response) => (await res.json()) as { code: string; reason: string; message: string; metadata: Record<string, string> };

  /** The recording's text as the Connect API streams it. */
  async function viaApi(): Promise<string> {
    const parts: Uint8Array[] = [];
    for await (const m of h.admin.recordings.readRecording({ recordingId })) if (m.event.case === "data") parts.push(m.event.value);
    return Buffer.concat(parts).toString("utf8");
  }

  it("answers the owner and an admin with the asciicast file, the same bytes ReadRecording streams", async () => {
    const expected = await viaApi();
    for (const token of [ownerToken, h.adminToken]) {
      const res = await get(recordingId, bearer(token));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-asciicast; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-guru-recording-truncated")).toBe("false");
      const text = await res.text();
      expect(text).toBe(expected);
      const { events } = parseAsciicast(text);
      expect(
        events
          .filter((e) => e.code === "o")
          .map((e) => e.data)
          .join(""),
      ).toContain("recorded-7");
    }
  });

  it("refuses a missing, forged or viewer token, an integration key, another technician, an unknown or malformed id; each with its code and reason", async () => {
    const other = await h.createTech(`other-${kind}`);
    const viewerToken = (await partner.mintViewerToken({ sessionId, origin })).token;
    const cases: [string, Record<string, string>, number, string, string][] = [
      [recordingId, {}, 401, "unauthenticated", "TOKEN_MISSING"],
      [recordingId, { authorization: "Basic abc" }, 401, "unauthenticated", "TOKEN_MISSING"],
      [recordingId, bearer("eyJhbGciOiJFUzI1NiJ9.e30.bad"), 401, "unauthenticated", "TOKEN_INVALID"],
      [recordingId, bearer(viewerToken), 401, "unauthenticated", "VIEWER_TOKEN_REFUSED"],
      [recordingId, bearer(integrationKey), 401, "unauthenticated", "INTEGRATION_KEY_REFUSED"],
      [recordingId, bearer(other.token), 403, "permission_denied", "RECORDING_NOT_OWNED"],
      ["00000000-0000-4000-8000-000000000000", bearer(ownerToken), 404, "not_found", "RECORDING_NOT_FOUND"],
      ["not-a-recording", bearer(ownerToken), 400, "invalid_argument", "INVALID_ARGUMENT"],
      ["%zz", bearer(ownerToken), 400, "invalid_argument", "INVALID_ARGUMENT"],
    ];
    for (const [id, headers, status, code, reason] of cases) {
      const res = await get(id, headers);
      const body = await refusal(res);
      expect({ id, headers, status: res.status, code: body.code, reason: body.reason }).toEqual({ id, headers, status, code, reason });
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(body.message).not.toBe("");
    }
    const notOwned = await refusal(await get(recordingId, bearer(other.token)));
    expect(notOwned.metadata).toEqual({ recordingId });
    // The viewer token was not consumed by the refusal: it still opens its session's terminal.
    const shell = await openShell(h.url, { token: "", sessionId: "", viewerToken, command: "true" }, { origin });
    expect((await shell.conn.exit).exitCode).toBe(0);
  });

  it("answers only GET, and only at /recordings/{id}", async () => {
    const post = await get(recordingId, bearer(ownerToken), "POST");
    expect(post.status).toBe(400);
    expect((await refusal(post)).code).toBe("invalid_argument");
    const nested = await fetch(`${h.url}/recordings/${recordingId}/more`, { headers: bearer(ownerToken) });
    expect(nested.status).toBe(404);
    expect((await refusal(nested)).code).toBe("not_found");
    // The route's answers are as unframeable as every other route's.
    expect((await get(recordingId, bearer(ownerToken))).headers.get("x-frame-options")).toBe("DENY");
  });
});
