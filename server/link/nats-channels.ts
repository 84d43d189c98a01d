// Operation channels between server nodes. A call on node B for an agent
// whose link is on node A opens a channel here: B holds a Channel like any
// other, A opens the real one on the agent's link, and the same wire Frames
// (data, credit, events, result, error, cancel) travel between them on two
// per-channel NATS subjects. Each hop runs the wire's own per-channel credit
// (ChannelImpl on both ends), and A takes the next frame from the agent only
// once B has credit for the last one, so the agent's window is paced by the
// caller's consumer and every process holds at most a window or two per
// channel, whatever the size of the transfer.
import { randomBytes } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Subscription } from "@nats-io/transport-node";
import { ChannelOpenSchema, type ChannelOpen } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { ChannelImpl, type Channel, type ChannelHost } from "../../lib/wire/channel.ts";
import { decodeFrame } from "../../lib/wire/codec.ts";
import { frameOverheadBytes, type WireLimits } from "../../lib/wire/limits.ts";
import type { NatsBus } from "../cluster/nats-bus.ts";
import type { AgentRegistry } from "./agent-router.ts";

export interface RelayCounters {
  /** A relayed channel opened (role: caller or owner) or ended (delta -1). */
  channels(role: "caller" | "owner", delta: number): void;
  /** Bytes of frames sent to or received from another node. */
  bytes(direction: "sent" | "received", bytes: number): void;
}

interface OpenRequest {
  rid: string;
  agentId: string;
  /** ChannelOpen, base64. */
  open: string;
  bulk: boolean;
  windowBytes: number;
  from: string;
}

interface Relay {
  peer: string;
  fail(error: GuruError): void;
}

export interface NatsChannelsOptions {
  bus: NatsBus;
  registry: AgentRegistry;
  limits: WireLimits;
  logger: Logger;
  counters?: RelayCounters;
}

export function createNatsChannels(options: NatsChannelsOptions) {
  const { bus, registry, limits, logger } = options;
  const relays = new Map<string, Relay>();
  const ridPrefix = randomBytes(4).toString("hex");
  let ridCounter = 0;
  let localIds = 1;
  // A NATS message carries one frame: chunks are cut to fit the server's max_payload.
  const chunkBytes = () => Math.max(1024, Math.min(limits.chunkBytes, bus.maxPayloadBytes - frameOverheadBytes - 256));
  const channelSubject = (rid: string, to: "owner" | "caller") => bus.subject("ch", rid, to);

  /** A ChannelHost whose frames go to a NATS subject (held back until the other end listens). */
  function natsHost(to: string, windowBytes: number, bulkTag: string, onEnded: () => void) {
    let held: Uint8Array[] | undefined = [];
    let broken: ((err: GuruError) => void) | undefined;
    const publish = (bytes: Uint8Array) => {
      if (held) {
        held.push(bytes);
        return;
      }
      try {
        bus.nc.publish(to, bytes);
        options.counters?.bytes("sent", bytes.byteLength);
      } catch (err) {
        broken?.(new GuruError("unavailable", `relaying a frame to another server node failed (${bulkTag}): ${(err as Error).message}`));
      }
    };
    const host: ChannelHost = {
      logger,
      receiveWindowBytes: windowBytes,
      maxQueuedBytes: Math.max(windowBytes, chunkBytes()),
      // The same bounds as on an agent link: a relayed channel is no cheaper to flood.
      maxQueuedEvents: limits.maxQueuedEvents,
      maxQueuedMessages: limits.maxQueuedMessages,
      sendWindowBytes: () => windowBytes,
      chunkBytes,
      // Between nodes the agent link's own sender holds bulk back while a terminal is open.
      bulkCreditHeldBytes: () => 0,
      sendUrgent: publish,
      sendBulk(bytes, onWritten, onSent) {
        publish(bytes);
        onWritten();
        onSent?.();
      },
      channelEnded: onEnded,
    };
    return {
      host,
      onBroken(fn: (err: GuruError) => void) {
        broken = fn;
      },
      /** The other end listens: send what was held. */
      release() {
        const pending = held ?? [];
        held = undefined;
        for (const bytes of pending) publish(bytes);
      },
    };
  }

  /** Routes frames from a subject into a channel; a frame that breaks the protocol fails the channel. */
  function listen(subject: string, channel: ChannelImpl, onViolation: (err: GuruError) => void): Subscription {
    return bus.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        options.counters?.bytes("received", msg.data.byteLength);
        let violation: { message: string } | undefined;
        try {
          violation = channel.receive(decodeFrame(msg.data, limits.maxFrameBytes));
        } catch (e) {
          violation = { message: `undecodable frame from another server node: ${(e as Error).message}` };
        }
        if (violation) onViolation(new GuruError("internal", `relayed channel: ${violation.message}`));
      },
    });
  }

  function track(rid: string, relay: Relay, role: "caller" | "owner", done: Promise<unknown>, cleanup: () => void): void {
    relays.set(rid, relay);
    options.counters?.channels(role, 1);
    void done.finally(() => {
      relays.delete(rid);
      options.counters?.channels(role, -1);
      cleanup();
    });
  }

  /** Caller side: a channel to an agent whose link is on `owner`. */
  function open(owner: string, agentId: string, channelOpen: ChannelOpen, bulk: boolean): Channel {
    bus.requireConnected(`reaching agent ${agentId} on server node ${owner}`);
    const rid = `${ridPrefix}${(++ridCounter).toString(36)}`;
    const windowBytes = limits.initialWindowBytes;
    let sub: Subscription | undefined;
    const out = natsHost(channelSubject(rid, "owner"), windowBytes, "to owner", () => sub?.unsubscribe());
    localIds += 2;
    const channel = new ChannelImpl(out.host, localIds, bulk);
    out.onBroken((err) => channel.linkLost(err));
    sub = listen(channelSubject(rid, "caller"), channel, (err) => {
      channel.cancel(err.message);
      channel.linkLost(err);
    });
    track(rid, { peer: owner, fail: (err) => channel.linkLost(err) }, "caller", channel.done, () => {});
    const body: OpenRequest = {
      rid,
      agentId,
      open: Buffer.from(toBinary(ChannelOpenSchema, channelOpen)).toString("base64"),
      bulk,
      windowBytes,
      from: bus.nodeId,
    };
    bus.request(bus.subject("node", owner, "open"), body, `opening a channel to agent ${agentId} on server node ${owner}`).then(
      () => out.release(),
      (err: GuruError) => channel.linkLost(err),
    );
    return channel;
  }

  /** Owner side: opens the real channel on the agent's link and relays both ways. */
  function serveOpens(): Subscription {
    return bus.serve<OpenRequest>(bus.subject("node", bus.nodeId, "open"), (req) => {
      const entry = registry.get(req.agentId);
      if (entry === undefined) throw new GuruError("agent_offline", `agent ${req.agentId} is not connected to server node ${bus.nodeId}`);
      const channelOpen = fromBinary(ChannelOpenSchema, Buffer.from(req.open, "base64"));
      const agentSide = entry.link.openChannel(channelOpen, { bulk: req.bulk });
      let sub: Subscription | undefined;
      const out = natsHost(channelSubject(req.rid, "caller"), req.windowBytes, "to caller", () => sub?.unsubscribe());
      out.release();
      const callerSide = new ChannelImpl(out.host, agentSide.id, req.bulk);
      const fail = (err: GuruError) => {
        agentSide.cancel(err.message);
        callerSide.linkLost(err);
      };
      out.onBroken(fail);
      sub = listen(channelSubject(req.rid, "owner"), callerSide, fail);
      const both = Promise.all([agentSide.done, callerSide.done]);
      track(req.rid, { peer: req.from, fail }, "owner", both, () => sub?.unsubscribe());
      void pump(callerSide, agentSide);
      void pump(agentSide, callerSide);
      return { ok: true };
    });
  }

  return {
    open,
    serveOpens,
    get relayedChannels() {
      return relays.size;
    },
    /** A node left (dead or gone): its relayed channels fail. */
    failPeersNotIn(live: ReadonlySet<string>, why: (node: string) => string): void {
      for (const relay of [...relays.values()]) {
        if (!live.has(relay.peer)) relay.fail(new GuruError("unavailable", why(relay.peer)));
      }
    },
    failAll(error: GuruError): void {
      for (const relay of [...relays.values()]) relay.fail(error);
    },
  };
}

export type NatsChannels = ReturnType<typeof createNatsChannels>;

/**
 * Moves one direction of a relayed channel: each message from `from` is passed
 * on, and the next is taken only once data is queued within the receiver's
 * credit, so credit granted upstream follows progress downstream. Data the
 * receiver no longer takes (it canceled) is dropped; the ending still goes.
 */
async function pump(from: Channel, to: Channel): Promise<void> {
  for await (const m of from.messages()) {
    if (m.type === "data") await to.sendData(m.data, { offset: m.offset, stream: m.stream }).catch(() => undefined);
    else if (m.type === "event") to.sendEvent(m.event);
    else if (m.type === "result") to.sendResult(m.result);
    else if (m.type === "error") to.sendError(m.error);
    else to.cancel(m.reason);
  }
}
