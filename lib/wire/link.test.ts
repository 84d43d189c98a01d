import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ExecResultSchema, ExitReason, OutputStream } from "../../gen/guru/wire/v1/exec_pb.js";
import { FileWriteFinishSchema, FileWriteResultSchema } from "../../gen/guru/wire/v1/files_pb.js";
import { HelloAckSchema, HelloSchema, LinkErrorCode, TunnelOpenSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError, isGuruError } from "../errors.ts";
import { closeCodes } from "./close-codes.ts";
import { decodeFrame, encodeDataFrame } from "./codec.ts";
import { demoAgentHandler, drain, execOpen, fileReadOpen, fileWriteOpen, linkPair, nextTicks, rawPeer, waitFor } from "../../test/support/link-test-kit.ts";
import { createLink, type Channel } from "./link.ts";
import { linkedFrameSockets } from "./frame-socket.ts";
import { silentLogger } from "../logging.ts";
import { defaultWireLimits, frameOverheadBytes } from "./limits.ts";

describe("link: channels", () => {
  it("opens a channel, carries data and ends it with a typed result", async () => {
    const pair = linkPair({ onChannelOpen: demoAgentHandler });
    const channel = pair.server.openChannel(execOpen("echo:hello"));
    expect(channel.id).toBe(1);
    expect(channel.bulk).toBe(false);
    expect(pair.server.channelCount).toBe(1);
    const out = await drain(channel);
    expect(out.bytes).toBe(5);
    expect(out.last?.type).toBe("result");
    if (out.last?.type !== "result" || out.last.result.case !== "exec") throw new Error("expected an exec result");
    expect(out.last.result.value.reason).toBe(ExitReason.EXITED);
    await channel.done;
    expect(channel.signal.aborted).toBe(false);
    expect(pair.server.channelCount).toBe(0);
    expect(pair.agent.channelCount).toBe(0);
    // Ids grow and never repeat; file transfers are bulk on both sides.
    const second = pair.server.openChannel(fileReadOpen(10));
    expect(second.id).toBe(3);
    expect(second.bulk).toBe(true);
    await drain(second);
  });

  it("passes control frames to onControl and answers heartbeats itself", async () => {
    const pair = linkPair({});
    pair.agent.sendControl({ case: "hello", value: create(HelloSchema, { agentVersion: "0.1.0", initialWindowBytes: 65536 }) });
    pair.server.sendControl({ case: "tunnelOpen", value: create(TunnelOpenSchema, { sessionId: "s1" }) });
    await waitFor(() => pair.serverControl.length === 1 && pair.agentControl.length === 1);
    expect(pair.serverControl[0].kind.case).toBe("hello");
    expect(pair.agentControl[0].kind.case).toBe("tunnelOpen");
    pair.agent.sendControl({ case: "heartbeat", value: { $typeName: "guru.wire.v1.Heartbeat", sequence: 7n } });
    await nextTicks(10);
    expect(pair.serverControl.length).toBe(1); // heartbeats never reach onControl
  });

  it("refuses channels past maxChannels with rate_limited, and accepts again once one ends", async () => {
    const pair = linkPair({ limits: { maxChannels: 2 }, onChannelOpen: demoAgentHandler });
    const a = pair.server.openChannel(execOpen("wait"));
    pair.server.openChannel(execOpen("wait"));
    expect(() => pair.server.openChannel(execOpen("wait"))).toThrowError(expect.objectContaining({ kind: "rate_limited" }));
    a.cancel("test");
    await a.done;
    expect(pair.server.openChannel(execOpen("echo:x")).id).toBe(5);
  });

  it("sends a typed error with kind and message; the channel ends and its signal aborts", async () => {
    const pair = linkPair({
      onChannelOpen: (channel) => channel.sendError(new GuruError("not_found", "no such file: /nope")),
    });
    const channel = pair.server.openChannel(fileReadOpen(1));
    const out = await drain(channel);
    expect(out.last).toEqual({ type: "error", error: expect.objectContaining({ kind: "not_found", message: "no such file: /nope" }) });
    expect(channel.signal.aborted).toBe(true);
    await expect(channel.sendData(new Uint8Array(1))).rejects.toSatisfy((err) => isGuruError(err));
  });

  it("survives a listener that throws or rejects", async () => {
    const pair = linkPair({
      onChannelOpen: () => {
        throw new Error("handler bug");
      },
    });
    pair.server.openChannel(execOpen("echo:x"));
    await waitFor(() => pair.agentLog.some((l) => l.msg === "onChannelOpen listener threw"));
    expect(pair.agent.channelCount).toBe(1);
    const [a, b] = linkedFrameSockets();
    const rejecting = createLink({
      socket: a,
      role: "server",
      limits: defaultWireLimits,
      logger: silentLogger(),
      onControl: async () => Promise.reject(new Error("async bug")),
    });
    createLink({ socket: b, role: "agent", limits: defaultWireLimits, logger: silentLogger(), onControl: () => {} }).sendControl({
      case: "hello",
      value: create(HelloSchema, {}),
    });
    await nextTicks(10);
    expect(rejecting.channelCount).toBe(0);
    rejecting.close(closeCodes.normal, "done");
    expect((await rejecting.closed).code).toBe(closeCodes.normal);
  });
});

describe("link: flow control", () => {
  it("never sends past the credit; a consumer that does not read bounds what is in flight to the window", async () => {
    const windowBytes = 64 * 1024;
    let dataBytesSentByAgent = 0;
    const pair = linkPair({ limits: { initialWindowBytes: windowBytes, chunkBytes: 16 * 1024 }, onChannelOpen: demoAgentHandler });
    pair.agentSocket.send = ((send) => (bytes: Uint8Array, done: (err?: Error) => void) => {
      const frame = decodeFrame(bytes, Infinity);
      if (frame.kind.case === "data") dataBytesSentByAgent += frame.kind.value.data.byteLength;
      send(bytes, done);
    })(pair.agentSocket.send.bind(pair.agentSocket));
    const channel = pair.server.openChannel(fileReadOpen(4 * 1024 * 1024));
    await nextTicks(50);
    // Nobody reads yet: exactly one window crossed the wire, and no more.
    expect(dataBytesSentByAgent).toBe(windowBytes);
    let consumed = 0;
    let maxInFlight = 0;
    const out = await drain(channel, async (bytes) => {
      consumed += bytes;
      maxInFlight = Math.max(maxInFlight, dataBytesSentByAgent - consumed);
      if (consumed % (256 * 1024) === 0) await new Promise((resolve) => setTimeout(resolve, 1)); // a slow consumer
    });
    expect(out.bytes).toBe(4 * 1024 * 1024);
    expect(maxInFlight).toBeLessThanOrEqual(windowBytes);
    if (out.last?.type !== "result" || out.last.result.case !== "fileRead") throw new Error("expected a file read result");
    expect(out.last.result.value.sha256).toBe(out.sha256);
  });

  it("moves 50 MiB through a linked pair intact (SHA-256) with small frames and a bounded window", async () => {
    const pair = linkPair({ onChannelOpen: demoAgentHandler });
    const size = 50 * 1024 * 1024;
    const out = await drain(pair.server.openChannel(fileReadOpen(size)));
    expect(out.bytes).toBe(size);
    if (out.last?.type !== "result" || out.last.result.case !== "fileRead") throw new Error("expected a file read result");
    expect(out.last.result.value.sha256).toBe(out.sha256);
  });

  it("uploads the other way (server sends, agent consumes) with offsets", async () => {
    const pair = linkPair({ limits: { chunkBytes: 100_000 }, onChannelOpen: demoAgentHandler });
    const channel = pair.server.openChannel(fileWriteOpen());
    const data = new Uint8Array(3_000_000).map((_, i) => (i * 31) % 256);
    await channel.sendData(data, { offset: 0n });
    channel.sendEvent({ case: "fileWriteFinish", value: create(FileWriteFinishSchema, {}) });
    const out = await drain(channel);
    if (out.last?.type !== "result" || out.last.result.case !== "fileWrite") throw new Error("expected a file write result");
    expect(out.last.result.value.size).toBe(3_000_000n);
    const { createHash } = await import("node:crypto");
    expect(out.last.result.value.sha256).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("splits data into chunks with increasing offsets and the caller's stream", async () => {
    const seen: { offset: bigint; stream: OutputStream; bytes: number }[] = [];
    const pair = linkPair({
      limits: { chunkBytes: 1000 },
      onChannelOpen: async (channel) => {
        for await (const m of channel.messages()) {
          if (m.type === "data") seen.push({ offset: m.offset, stream: m.stream, bytes: m.data.byteLength });
          if (m.type === "event") break;
        }
        channel.sendResult({ case: "fileWrite", value: create(FileWriteResultSchema, {}) });
      },
    });
    const channel = pair.server.openChannel(fileWriteOpen());
    await channel.sendData(new Uint8Array(2500), { offset: 10_000n, stream: OutputStream.STDERR });
    channel.sendEvent({ case: "fileWriteFinish", value: create(FileWriteFinishSchema, {}) });
    await drain(channel);
    expect(seen).toEqual([
      { offset: 10_000n, stream: OutputStream.STDERR, bytes: 1000 },
      { offset: 11_000n, stream: OutputStream.STDERR, bytes: 1000 },
      { offset: 12_000n, stream: OutputStream.STDERR, bytes: 500 },
    ]);
  });

  it("credits data a consumer stopped reading, so the sender never stalls", async () => {
    const pair = linkPair({ limits: { initialWindowBytes: 32 * 1024, chunkBytes: 8 * 1024 }, onChannelOpen: demoAgentHandler });
    const channel = pair.server.openChannel(fileReadOpen(1024 * 1024));
    for await (const message of channel.messages()) {
      if (message.type === "data") break; // read one chunk, then walk away
    }
    await channel.done; // the agent could still send its megabyte and finish
    expect(channel.signal.aborted).toBe(false);
  });
});

describe("link: cancel and close", () => {
  it("cancel reaches the handler (message + aborted signal) and the channel ends with its answer", async () => {
    let agentChannel: Channel | undefined;
    const pair = linkPair({
      onChannelOpen: (channel, open) => {
        agentChannel = channel;
        demoAgentHandler(channel, open);
      },
    });
    const channel = pair.server.openChannel(execOpen("wait"));
    await waitFor(() => agentChannel !== undefined);
    channel.cancel("technician pressed ctrl-c");
    const out = await drain(channel);
    if (out.last?.type !== "result" || out.last.result.case !== "exec") throw new Error("expected an exec result");
    expect(out.last.result.value.reason).toBe(ExitReason.CANCELED);
    expect(agentChannel!.signal.aborted).toBe(true);
    expect(agentChannel!.signal.reason).toEqual(expect.objectContaining({ kind: "canceled", message: expect.stringContaining("ctrl-c") }));
  });

  it("cancel rejects the peer's sendData waiting for credit", async () => {
    let pending: Promise<void> | undefined;
    const pair = linkPair({
      limits: { initialWindowBytes: 16 * 1024, chunkBytes: 8 * 1024 },
      onChannelOpen: (channel) => {
        pending = channel.sendData(new Uint8Array(1024 * 1024));
        pending.catch((err: unknown) => channel.sendError(err as GuruError));
      },
    });
    const channel = pair.server.openChannel(fileReadOpen(1));
    await waitFor(() => pending !== undefined);
    await nextTicks(10);
    channel.cancel("enough");
    await expect(pending).rejects.toMatchObject({ kind: "canceled" });
    const out = await drain(channel);
    expect(out.last).toMatchObject({ type: "error", error: { kind: "canceled" } });
  });

  it("closing the link ends every channel with agent_offline / unavailable and rejects pending sends", async () => {
    const agentChannels: Channel[] = [];
    const pair = linkPair({ limits: { initialWindowBytes: 16 * 1024 }, onChannelOpen: (channel) => agentChannels.push(channel) });
    const exec = pair.server.openChannel(execOpen("wait"));
    const upload = pair.server.openChannel(fileWriteOpen());
    const pending = upload.sendData(new Uint8Array(1024 * 1024)); // blocks on the 16 KiB window
    await waitFor(() => agentChannels.length === 2);
    pair.server.close(closeCodes.goingAway, "server draining");
    const serverOut = await drain(exec);
    expect(serverOut.last).toMatchObject({ type: "error", error: { kind: "agent_offline" } });
    await expect(pending).rejects.toMatchObject({ kind: "agent_offline" });
    expect(upload.signal.aborted).toBe(true);
    expect(await pair.server.closed).toEqual({ code: closeCodes.goingAway, reason: "server draining" });
    expect(await pair.agent.closed).toEqual({ code: closeCodes.goingAway, reason: "server draining" });
    for (const channel of agentChannels) {
      const out = await drain(channel);
      expect(out.last).toMatchObject({ type: "error", error: { kind: "unavailable" } });
      expect(channel.signal.aborted).toBe(true);
    }
    expect(pair.server.channelCount + pair.agent.channelCount).toBe(0);
    expect(() => pair.server.openChannel(execOpen("x"))).toThrowError(expect.objectContaining({ kind: "agent_offline" }));
    // Late sends after the close are harmless no-ops.
    agentChannels[0].sendResult({ case: "exec", value: create(ExecResultSchema, {}) });
    pair.server.sendControl({ case: "helloAck", value: create(HelloAckSchema, {}) });
  });
});

describe("link: heartbeats", () => {
  const fast = { intervalMs: 20, deadlineMs: 150 };

  it("keeps a quiet link up while heartbeats flow", async () => {
    const pair = linkPair({ agentHeartbeat: { ...fast, send: true }, serverHeartbeat: { ...fast, send: false } });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(pair.server.channelCount).toBe(0);
    let settled = false;
    void pair.server.closed.then(() => (settled = true));
    await nextTicks();
    expect(settled).toBe(false);
    pair.agent.close(closeCodes.normal, "test over");
    await pair.server.closed;
  });

  it("the agent closes (heartbeatTimeout) when the server stops answering, ending its channels", async () => {
    const agentChannels: Channel[] = [];
    const pair = linkPair({ agentHeartbeat: { ...fast, send: true }, serverHeartbeat: { ...fast, send: false }, onChannelOpen: (c) => agentChannels.push(c) });
    pair.server.openChannel(execOpen("wait"));
    await waitFor(() => agentChannels.length === 1);
    const started = Date.now();
    pair.serverSocket.dropSend = true; // half-open: the server's frames vanish
    const closed = await pair.agent.closed;
    expect(closed.code).toBe(closeCodes.heartbeatTimeout);
    expect(Date.now() - started).toBeLessThan(fast.deadlineMs + 150);
    expect((await drain(agentChannels[0])).last).toMatchObject({ type: "error", error: { kind: "unavailable" } });
    expect(pair.agentLog.some((l) => l.msg.includes("heartbeat deadline"))).toBe(true);
  });

  it("the server closes (heartbeatTimeout) when the agent goes silent", async () => {
    const pair = linkPair({ agentHeartbeat: { ...fast, send: true }, serverHeartbeat: { ...fast, send: false } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    pair.agentSocket.dropSend = true;
    expect((await pair.server.closed).code).toBe(closeCodes.heartbeatTimeout);
  });

  it("starts heartbeats later through setHeartbeat (agent, after HelloAck)", async () => {
    const pair = linkPair({ serverHeartbeat: { ...fast, send: false } });
    pair.agent.setHeartbeat({ ...fast, send: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    pair.agent.close(closeCodes.normal, "bye");
    expect((await pair.server.closed).code).toBe(closeCodes.normal);
  });
});

describe("link: sizes after the handshake", () => {
  it("uses the peer's window and frame size for channels opened after setPeerLimits", async () => {
    const frames: number[] = [];
    const pair = linkPair({
      onChannelOpen: demoAgentHandler,
      onServerSocketSend: (bytes) => {
        const frame = decodeFrame(bytes, Infinity);
        if (frame.kind.case === "data") frames.push(frame.kind.value.data.byteLength);
      },
    });
    pair.server.setPeerLimits({ initialWindowBytes: 0, maxFrameBytes: 10_064 });
    const channel = pair.server.openChannel(fileWriteOpen());
    await channel.sendData(new Uint8Array(25_000));
    channel.sendEvent({ case: "fileWriteFinish", value: create(FileWriteFinishSchema, {}) });
    await drain(channel);
    expect(frames).toEqual([10_000, 10_000, 5_000]);
    expect(() => pair.server.setPeerLimits({ initialWindowBytes: 1, maxFrameBytes: 10 })).toThrowError(/no room/);
  });

  it("a full chunk with the largest offset fits a frame: chunkBytes + frameOverheadBytes <= maxFrameBytes", () => {
    const bytes = encodeDataFrame(1, new Uint8Array(defaultWireLimits.chunkBytes), 2n ** 63n, OutputStream.STDERR);
    expect(bytes.byteLength).toBeLessThanOrEqual(defaultWireLimits.chunkBytes + frameOverheadBytes);
    expect(decodeFrame(bytes, defaultWireLimits.maxFrameBytes).kind.case).toBe("data");
  });

  it("the decoder accepts a frame of exactly maxFrameBytes and refuses one byte more (FRAME_TOO_LARGE, 1009)", async () => {
    const max = defaultWireLimits.maxFrameBytes;
    const exact = dataFrameOfSize(1, max);
    const over = dataFrameOfSize(1, max + 1);
    expect([exact.byteLength, over.byteLength]).toEqual([max, max + 1]);
    expect(decodeFrame(exact, max).kind.case).toBe("data");
    expect(() => decodeFrame(over, max)).toThrowError(expect.objectContaining({ code: LinkErrorCode.FRAME_TOO_LARGE, closeCode: closeCodes.frameTooLarge }));

    // And through a link: the exact frame is delivered, the next one closes the link.
    const [serverSocket, agentSocket] = linkedFrameSockets();
    const link = createLink({ socket: serverSocket, role: "server", limits: defaultWireLimits, logger: silentLogger(), onControl: () => {} });
    const peer = rawPeer(agentSocket);
    const channel = link.openChannel(execOpen("x"));
    const received = channel.messages()[Symbol.asyncIterator]();
    peer.sendBytes(exact);
    const first = await received.next();
    expect(first.value?.type === "data" && first.value.data.byteLength).toBe(exact.byteLength - dataFrameOverhead(1, exact.byteLength));
    peer.sendBytes(dataFrameOfSize(1, max + 1));
    expect((await link.closed).code).toBe(closeCodes.frameTooLarge);
    await waitFor(() => peer.received.some((f) => f.kind.case === "linkError"));
    const linkError = peer.received.find((f) => f.kind.case === "linkError");
    expect(linkError?.kind.case === "linkError" && linkError.kind.value.code).toBe(LinkErrorCode.FRAME_TOO_LARGE);
  });
});

/** A data frame on `channelId` whose encoding is exactly `size` bytes (offset 0, so nothing but the payload varies). */
function dataFrameOfSize(channelId: number, size: number): Uint8Array {
  for (let payload = size; payload > 0; payload--) {
    const bytes = encodeDataFrame(channelId, new Uint8Array(payload), 0n, OutputStream.STDOUT);
    if (bytes.byteLength === size) return bytes;
    if (bytes.byteLength < size) break;
  }
  throw new Error(`no data frame encodes to exactly ${size} bytes`);
}

function dataFrameOverhead(channelId: number, size: number): number {
  const frame = decodeFrame(dataFrameOfSize(channelId, size), Infinity);
  return frame.kind.case === "data" ? size - frame.kind.value.data.byteLength : 0;
}
