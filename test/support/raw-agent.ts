// A hand-driven agent socket for tests that need to send what a real agent
// never would: garbage, oversized frames, or nothing at all.
import { create } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { FrameSchema, HelloSchema, TunnelClosedSchema, TunnelReadySchema, type Frame } from "../../gen/guru/wire/v1/wire_pb.js";
import { decodeFrame, encodeFrame } from "../../lib/wire/codec.ts";

export interface RawAgent {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  send(kind: Frame["kind"], channelId?: number): void;
  sendHello(): void;
}

export function rawUpgrade(url: string, options: { key?: string; protocol?: string | null }): Promise<{ status: number; body: string } | RawAgent> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
    const protocol = options.protocol === null ? undefined : (options.protocol ?? "guru.wire.v1");
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/agent`, protocol, { headers, perMessageDeflate: false });
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on("error", (err) => reject(err));
    ws.on("open", () => {
      const frames: Frame[] = [];
      ws.on("message", (data: Buffer) => {
        try {
          frames.push(decodeFrame(new Uint8Array(data), 64 * 1024 * 1024));
        } catch {
          // Not a frame; the tests look at frames only.
        }
      });
      const closed = new Promise<{ code: number; reason: string }>((r) => ws.on("close", (code, reason) => r({ code, reason: reason.toString() })));
      const agent: RawAgent = {
        ws,
        frames,
        closed,
        send(kind, channelId = 0) {
          ws.send(encodeFrame(create(FrameSchema, { channelId, kind })));
        },
        sendHello() {
          agent.send({
            case: "hello",
            value: create(HelloSchema, {
              agentVersion: "test",
              inventory: { hostname: "raw", os: "linux" },
              initialWindowBytes: 1 << 20,
              maxFrameBytes: 1 << 20,
            }),
          });
        },
      };
      resolve(agent);
    });
  });
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Makes a raw agent answer TunnelOpen with TunnelReady and TunnelClose with TunnelClosed, as an agent in heartbeat mode does. */
export function answerTunnels(agent: RawAgent): void {
  agent.ws.on("message", (data: Buffer) => {
    let frame: Frame;
    try {
      frame = decodeFrame(new Uint8Array(data), 64 * 1024 * 1024);
    } catch {
      return;
    }
    if (frame.kind.case === "tunnelOpen") agent.send({ case: "tunnelReady", value: create(TunnelReadySchema, { sessionId: frame.kind.value.sessionId }) });
    else if (frame.kind.case === "tunnelClose")
      agent.send({ case: "tunnelClosed", value: create(TunnelClosedSchema, { sessionId: frame.kind.value.sessionId }) });
  });
}
