// Property: whatever an agent with a valid key sends — arbitrary bytes, or
// Frames with hostile values — the server answers with error frames or
// closes that one link (with a LinkError first), never an internal error and
// never a crash; a well-behaved agent on the same server keeps running
// commands throughout.
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { HeartbeatSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { describeDatabases } from "../support/databases.ts";
import { openTunnel, type Tunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { hostileBytes, hostileFrame, hostileHello } from "../support/hostile-frames.ts";
import { rawUpgrade, waitFor, type RawAgent } from "../support/raw-agent.ts";

// Each a refusal of the peer's input, sent after a LinkError; 1011 (our own fault) is not among them.
const refusalCloses = new Set<number>([closeCodes.protocolError, closeCodes.unsupportedData, closeCodes.policyViolation, closeCodes.frameTooLarge]);
const runsPerProperty = 100;

describeDatabases("hostile frames (property)", (kind) => {
  let t: TestServer;
  let healthy: Tunnel;
  let runs = 0;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { handshakeTimeoutMs: 2000 } });
    healthy = await openTunnel(t, "well-behaved");
  });
  afterAll(async () => {
    await t?.close();
  });

  async function commandRoundTrip(): Promise<void> {
    const ran = await healthy.api.exec.runCommand({ sessionId: healthy.sessionId, command: "echo ok" });
    expect([Buffer.from(ran.stdout).toString(), ran.result?.exitCode]).toEqual(["ok\n", 0]);
  }

  /** Sends the messages, then a heartbeat as a barrier: the link either answers it or has closed. */
  async function sendAndSettle(messages: Uint8Array[], helloFirst: boolean): Promise<void> {
    const { agentId, agentKey } = await t.enrollAgent(`hostile-${kind}-${++runs}`);
    const raw = (await rawUpgrade(t.url, { key: agentKey })) as RawAgent;
    let closed: { code: number; reason: string } | undefined;
    void raw.closed.then((c) => (closed = c));
    if (helloFirst) {
      raw.sendHello();
      await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 5000, "HelloAck");
    }
    for (const m of messages) if (raw.ws.readyState === raw.ws.OPEN) raw.ws.send(m);
    const acksBefore = raw.frames.filter((f) => f.kind.case === "heartbeatAck").length;
    if (raw.ws.readyState === raw.ws.OPEN) raw.send({ case: "heartbeat", value: create(HeartbeatSchema, { sequence: 424242n }) });
    await waitFor(
      () => closed !== undefined || raw.frames.filter((f) => f.kind.case === "heartbeatAck").length > acksBefore,
      5000,
      "the link to answer the barrier heartbeat or close",
    );
    if (closed !== undefined) {
      expect(refusalCloses.has(closed.code), `close code ${closed.code} (${closed.reason})`).toBe(true);
      expect(
        raw.frames.some((f) => f.kind.case === "linkError"),
        `a LinkError before close ${closed.code}`,
      ).toBe(true);
      await waitFor(() => !t.server.router.isOnline(agentId), 5000, "the refused link unregistered");
    } else {
      raw.ws.close(closeCodes.normal);
      await raw.closed;
    }
    expect(t.server.router.isOnline(healthy.agent.agentId)).toBe(true);
    if (runs % 10 === 0) await commandRoundTrip();
  }

  it(`${runsPerProperty} runs of structurally valid Frames with hostile values: error frames or a closed link, never a crash`, async () => {
    await fc.assert(
      // Half the runs start with a hostile Hello of their own: the frame the server reads first, and trusts most.
      fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 12 }), hostileHello, fc.boolean(), (frames, hello, helloFirst) =>
        sendAndSettle(helloFirst ? frames : [hello, ...frames], helloFirst),
      ),
      { numRuns: runsPerProperty },
    );
    await commandRoundTrip();
  }, 180_000);

  it(`${runsPerProperty} runs of arbitrary bytes: a closed link (LinkError first) or a link still answering, never a crash`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileBytes, { minLength: 1, maxLength: 8 }), fc.boolean(), (messages, helloFirst) => sendAndSettle(messages, helloFirst)),
      { numRuns: runsPerProperty },
    );
    await commandRoundTrip();
  }, 180_000);
});
