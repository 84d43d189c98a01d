// FileService: checks input, calls the files and uploads domain, maps results.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  FileEntrySchema,
  FileType,
  ReadFileResponseSchema,
  UploadStatus,
  type FileEntry,
  type FileService as FileApi,
  type ReadFileResponse,
} from "../../gen/guru/api/v1/files_pb.js";
import type { FileEntryInfo, FileEntryType } from "../domain/agent-files.ts";
import { byteCount, type FileService } from "../domain/files.ts";
import type { UploadService } from "../domain/uploads.ts";
import type { UploadStatus as StoreUploadStatus } from "../store/uploads.ts";
import { principalOf } from "./context.ts";
import { timestamp } from "./convert.ts";

const fileTypes: Record<FileEntryType, FileType> = { file: FileType.FILE, dir: FileType.DIR, symlink: FileType.SYMLINK, other: FileType.OTHER };
const uploadStatuses: Record<StoreUploadStatus, UploadStatus> = {
  active: UploadStatus.ACTIVE,
  finished: UploadStatus.FINISHED,
  aborted: UploadStatus.ABORTED,
  failed: UploadStatus.FAILED,
};

function toApiEntry(e: FileEntryInfo): FileEntry {
  return create(FileEntrySchema, { name: e.name, type: fileTypes[e.type], size: BigInt(e.size), mode: e.mode, modifiedAt: timestamp(new Date(e.modifiedMs)) });
}

export function fileServiceImpl(files: FileService, uploads: UploadService): ServiceImpl<typeof FileApi> {
  return {
    async stat(req, ctx) {
      const s = await files.stat(principalOf(ctx), req.sessionId, req.path);
      return { path: s.path, entry: toApiEntry(s.entry), mimeType: s.mimeType };
    },
    async listDirectory(req, ctx) {
      const page = await files.listDirectory(principalOf(ctx), { sessionId: req.sessionId, path: req.path, pageSize: req.pageSize, pageToken: req.pageToken });
      return { path: page.path, entries: page.entries.map(toApiEntry), nextPageToken: page.nextPageToken, totalEntries: page.totalEntries };
    },
    async *readFile(req, ctx): AsyncGenerator<ReadFileResponse> {
      const principal = principalOf(ctx);
      const range = { sessionId: req.sessionId, path: req.path, offset: byteCount(req.offset, "offset"), length: byteCount(req.length, "length") };
      for await (const event of files.readFile(principal, range, ctx.signal)) {
        if (event.type === "info")
          yield create(ReadFileResponseSchema, { event: { case: "info", value: { path: event.path, size: BigInt(event.size), mimeType: event.mimeType } } });
        else if (event.type === "chunk")
          yield create(ReadFileResponseSchema, { event: { case: "chunk", value: { offset: BigInt(event.offset), data: event.data } } });
        else
          yield create(ReadFileResponseSchema, {
            event: { case: "summary", value: { size: BigInt(event.size), bytesSent: BigInt(event.bytesSent), sha256: event.sha256 } },
          });
      }
    },
    async startUpload(req, ctx) {
      const started = await uploads.start(principalOf(ctx), req);
      return { uploadId: started.uploadId, committedOffset: BigInt(started.committedOffset) };
    },
    async uploadChunk(req, ctx) {
      const r = await uploads.chunk(principalOf(ctx), req.uploadId, req.offset, req.data);
      return { committedOffset: BigInt(r.committedOffset), receivedOffset: BigInt(r.receivedOffset) };
    },
    async getUpload(req, ctx) {
      const u = await uploads.get(principalOf(ctx), req.uploadId);
      return {
        uploadId: u.uploadId,
        path: u.path,
        size: BigInt(u.size),
        committedOffset: BigInt(u.committedOffset),
        status: uploadStatuses[u.status],
        updatedAt: timestamp(u.updatedAt),
      };
    },
    async finishUpload(req, ctx) {
      const o = await uploads.finish(principalOf(ctx), req.uploadId, req.sha256);
      return { size: BigInt(o.size), sha256: o.sha256, backupPath: o.backupPath, path: o.path };
    },
    async abortUpload(req, ctx) {
      await uploads.abort(principalOf(ctx), req.uploadId);
      return {};
    },
  };
}
