// AgentFiles (the domain's port) over the AgentRouter: one channel per
// operation, bulk for transfers. Data moves within the agent's credit, so what
// the server holds per transfer is bounded by the window, not the file size.
import { create } from "@bufbuild/protobuf";
import {
  FileReadRequestSchema,
  FileType,
  FileWriteFinishSchema,
  FileWriteRequestSchema,
  ListDirectoryRequestSchema,
  StatRequestSchema,
  type FileEntry as WireFileEntry,
} from "../../gen/guru/wire/v1/files_pb.js";
import { ChannelOpenSchema, type ChannelOpen } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { Channel, ChannelMessage } from "../../lib/wire/link.ts";
import type { AgentFiles, AgentUploadStream, FileEntryInfo, FileEntryType, UploadOutcome } from "../domain/agent-files.ts";
import type { AgentRouter } from "./agent-router.ts";

const entryTypes: Record<FileType, FileEntryType> = {
  [FileType.UNSPECIFIED]: "other",
  [FileType.FILE]: "file",
  [FileType.DIR]: "dir",
  [FileType.SYMLINK]: "symlink",
  [FileType.OTHER]: "other",
};

function toEntry(e: WireFileEntry | undefined): FileEntryInfo {
  return {
    name: e?.name ?? "",
    type: entryTypes[e?.type ?? FileType.OTHER] ?? "other",
    size: Number(e?.size ?? 0n),
    mode: e?.mode ?? 0,
    modifiedMs: Number(e?.modifiedUnixMs ?? 0n),
  };
}

function unexpected(message: ChannelMessage | undefined, what: string): GuruError {
  if (message?.type === "error") return message.error;
  return new GuruError("unavailable", `the agent ended the ${what} without a result${message ? ` (got ${message.type})` : ""}`);
}

/** The single result of a short operation (stat, list). */
async function resultOf(channel: Channel, what: string) {
  let last: ChannelMessage | undefined;
  for await (const message of channel.messages()) {
    last = message;
    if (message.type === "result") return message.result;
    if (message.type === "error") throw message.error;
  }
  throw unexpected(last, what);
}

/** Time the agent has to answer a FileWriteRequest; a resume re-hashes the partial first (about 600 MB/s). */
const uploadOpenTimeoutMs = 60_000;

export function createAgentFiles(router: AgentRouter): AgentFiles {
  const open = (request: ChannelOpen["request"]) => create(ChannelOpenSchema, { request });

  async function openUpload(
    agentId: string,
    req: Parameters<AgentFiles["openUpload"]>[1],
    hooks: Parameters<AgentFiles["openUpload"]>[2] = {},
  ): Promise<AgentUploadStream> {
    const channel = router.openChannel(agentId, open({ case: "fileWrite", value: create(FileWriteRequestSchema, { ...req, size: BigInt(req.size) }) }), {
      bulk: true,
    });
    let committed = -1;
    let failure: Error | undefined;
    let lastWrite: Promise<void> = Promise.resolve();
    let opened!: { resolve: () => void; reject: (err: Error) => void };
    const whenOpened = new Promise<void>((resolve, reject) => (opened = { resolve, reject }));
    let finishing: { resolve: (o: UploadOutcome) => void; reject: (err: Error) => void } | undefined;
    let outcome: UploadOutcome | undefined;

    const stream: AgentUploadStream = {
      get committedOffset() {
        return Math.max(committed, 0);
      },
      get failure() {
        return failure;
      },
      write(offset, data) {
        if (failure) return Promise.reject(failure);
        const sending = channel.sendData(data, { offset: BigInt(offset) });
        lastWrite = sending.catch(() => {});
        return sending;
      },
      async finish(sha256 = "") {
        if (failure) throw failure;
        // Data still waiting for credit would be overtaken by the event otherwise.
        await lastWrite;
        if (failure) throw failure;
        const result = new Promise<UploadOutcome>((resolve, reject) => (finishing = { resolve, reject }));
        channel.sendEvent({ case: "fileWriteFinish", value: create(FileWriteFinishSchema, { sha256 }) });
        return result;
      },
      async abort(reason) {
        if (failure) return;
        channel.cancel(reason);
        await channel.done;
      },
      detach(reason) {
        if (failure) return;
        failure = new GuruError("unavailable", `upload channel closed: ${reason}`);
        // An error (not a cancel) tells the agent to keep the partial.
        channel.sendError(new GuruError("canceled", reason));
      },
    };

    (async () => {
      let last: ChannelMessage | undefined;
      for await (const message of channel.messages()) {
        last = message;
        if (message.type === "event" && message.event.case === "fileWriteProgress") {
          committed = Number(message.event.value.committedOffset);
          opened.resolve();
        } else if (message.type === "result" && message.result.case === "fileWrite") {
          const r = message.result.value;
          outcome = { size: Number(r.size), sha256: r.sha256, backupPath: r.backupPath, path: r.path };
          committed = outcome.size;
        }
      }
      failure ??= outcome
        ? new GuruError("failed_precondition", "the upload is finished", { reason: "UPLOAD_NOT_ACTIVE", metadata: { status: "finished" } })
        : unexpected(last, "upload");
      opened.reject(failure);
      if (outcome) finishing?.resolve(outcome);
      else finishing?.reject(failure);
      hooks.onEnd?.(stream);
    })().catch((err: unknown) => {
      // A fault in the loop above still settles the waiters, and never escapes unhandled.
      failure ??= toGuruError(err);
      opened.reject(failure);
      finishing?.reject(failure);
    });

    const timer = setTimeout(() => {
      stream.detach("no answer");
      opened.reject(
        new GuruError("timeout", `the agent did not answer the upload request within ${uploadOpenTimeoutMs} ms`, {
          metadata: { timeoutMs: uploadOpenTimeoutMs },
        }),
      );
    }, uploadOpenTimeoutMs);
    try {
      await whenOpened;
    } finally {
      clearTimeout(timer);
    }
    return stream;
  }

  return {
    async stat(agentId, req) {
      const result = await resultOf(router.openChannel(agentId, open({ case: "stat", value: create(StatRequestSchema, req) }), { bulk: false }), "stat");
      if (result.case !== "stat") throw new GuruError("internal", `the agent answered stat with ${String(result.case)}`);
      return { path: result.value.path, entry: toEntry(result.value.entry), mimeType: result.value.mimeType };
    },

    async listDirectory(agentId, req) {
      const channel = router.openChannel(agentId, open({ case: "listDirectory", value: create(ListDirectoryRequestSchema, req) }), { bulk: false });
      const result = await resultOf(channel, "listing");
      if (result.case !== "listDirectory") throw new GuruError("internal", `the agent answered a listing with ${String(result.case)}`);
      const page = result.value;
      return { path: page.path, entries: page.entries.map(toEntry), nextPageToken: page.nextPageToken, totalEntries: page.totalEntries };
    },

    async *readFile(agentId, req, signal) {
      const value = create(FileReadRequestSchema, { ...req, offset: BigInt(req.offset), length: BigInt(req.length) });
      const channel = router.openChannel(agentId, open({ case: "fileRead", value }), { bulk: true });
      let finished = false;
      const onAbort = () => channel.cancel(signal?.reason instanceof GuruError ? signal.reason.message : "the client went away");
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();
      try {
        let last: ChannelMessage | undefined;
        for await (const message of channel.messages()) {
          last = message;
          if (message.type === "data") {
            yield { type: "chunk", offset: Number(message.offset), data: message.data };
          } else if (message.type === "event" && message.event.case === "fileReadInfo") {
            const info = message.event.value;
            yield { type: "info", path: info.path, size: Number(info.size), mimeType: info.mimeType };
          } else if (message.type === "result" && message.result.case === "fileRead") {
            finished = true;
            const r = message.result.value;
            yield { type: "summary", size: Number(r.size), bytesSent: Number(r.bytesSent), sha256: r.sha256 };
            return;
          }
        }
        throw signal?.aborted ? new GuruError("canceled", "the download was canceled") : unexpected(last, "download");
      } finally {
        signal?.removeEventListener("abort", onAbort);
        if (!finished) channel.cancel("the download stopped early");
      }
    },

    openUpload,
  };
}
