// What the agent remembers about unfinished uploads, one JSON file per upload
// in the agent's private state directory, so that an upload survives an agent
// restart. The record is a hint: the temp file's real length decides where a
// resume starts, and its bytes are re-hashed, never trusted from here.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { GuruError } from "../../lib/errors.ts";
import { errnoCode } from "./file-entry.ts";

export interface UploadRecord {
  version: 1;
  uploadId: string;
  /** Real path of the file being replaced or created. */
  targetPath: string;
  tempPath: string;
  size: number;
  sha256: string;
  createdMs: number;
  /** Last open (start or resume). Writes do not touch the record: the temp file's mtime tells when bytes last arrived. */
  updatedMs: number;
}

// Upload ids become parts of file names: no separators, no dots, bounded length.
const uploadIdPattern = /^[A-Za-z0-9_-]{1,128}$/;
// Most filesystems limit one name to 255 bytes.
const maxNameBytes = 255;
const tempMarker = ".guru-upload-";

export function checkUploadId(uploadId: string): void {
  if (typeof uploadId !== "string" || !uploadIdPattern.test(uploadId)) {
    throw new GuruError("invalid", "uploadId must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'", { details: { uploadId } });
  }
}

/** `.<name>.guru-upload-<uploadId>` beside the target (same filesystem, so the final rename is atomic); a long name is shortened to fit. */
export function tempPathFor(targetPath: string, uploadId: string, pathImpl: typeof path = path): string {
  const suffix = tempMarker + uploadId;
  let name = pathImpl.basename(targetPath);
  while (name.length > 0 && Buffer.byteLength(`.${name}${suffix}`) > maxNameBytes) name = name.slice(0, -1);
  return pathImpl.join(pathImpl.dirname(targetPath), `.${name}${suffix}`);
}

function isRecord(value: unknown): value is UploadRecord {
  const r = value as UploadRecord;
  return (
    typeof r === "object" &&
    r !== null &&
    r.version === 1 &&
    typeof r.uploadId === "string" &&
    typeof r.targetPath === "string" &&
    typeof r.tempPath === "string" &&
    Number.isSafeInteger(r.size) &&
    typeof r.sha256 === "string" &&
    Number.isFinite(r.createdMs) &&
    Number.isFinite(r.updatedMs)
  );
}

export interface StoredUpload {
  uploadId: string;
  /** Undefined when the file could not be parsed. */
  record: UploadRecord | undefined;
  fileMtimeMs: number;
}

export interface UploadStateStore {
  read(uploadId: string): Promise<UploadRecord | undefined>;
  write(record: UploadRecord): Promise<void>;
  remove(uploadId: string): Promise<void>;
  list(): Promise<StoredUpload[]>;
}

export function createUploadStateStore(stateDir: string): UploadStateStore {
  let ready: Promise<unknown> | undefined;
  const ensureDir = () => (ready ??= mkdir(stateDir, { recursive: true, mode: 0o700 }));
  const fileOf = (uploadId: string) => path.join(stateDir, `${uploadId}.json`);

  async function readFileRecord(file: string): Promise<UploadRecord | undefined | null> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return null;
      throw err;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return isRecord(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    async read(uploadId) {
      const record = await readFileRecord(fileOf(uploadId));
      // A corrupt record is treated as absent: the upload starts over, which is always safe.
      return record ?? undefined;
    },
    async write(record) {
      await ensureDir();
      // Write-then-rename: a crash leaves the old record or the new one, never half of one.
      const tmp = `${fileOf(record.uploadId)}.${randomBytes(6).toString("hex")}.tmp`;
      await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
      await rename(tmp, fileOf(record.uploadId));
    },
    async remove(uploadId) {
      await rm(fileOf(uploadId), { force: true });
    },
    async list() {
      await ensureDir();
      const out: StoredUpload[] = [];
      for (const name of await readdir(stateDir)) {
        if (!name.endsWith(".json")) continue;
        const uploadId = name.slice(0, -".json".length);
        if (!uploadIdPattern.test(uploadId)) continue;
        const file = path.join(stateDir, name);
        const [record, stats] = await Promise.all([readFileRecord(file), stat(file).catch(() => undefined)]);
        if (record === null || !stats) continue; // removed meanwhile
        out.push({ uploadId, record, fileMtimeMs: stats.mtimeMs });
      }
      return out;
    },
  };
}
