// The domain's port to an agent's files, in its own types. server/link
// implements it over the AgentRouter (one bulk channel per transfer), so the
// file and upload services never see frames or generated code.

export type FileEntryType = "file" | "dir" | "symlink" | "other";

export interface FileEntryInfo {
  name: string;
  type: FileEntryType;
  size: number;
  mode: number;
  modifiedMs: number;
}

export interface StatInfo {
  /** The real path the agent described (after '..', symlinks and the allowlist). */
  path: string;
  entry: FileEntryInfo;
  mimeType: string;
}

export interface DirectoryPage {
  path: string;
  entries: FileEntryInfo[];
  /** "" on the last page. */
  nextPageToken: string;
  totalEntries: number;
}

export type FileReadEvent =
  | { type: "info"; path: string; size: number; mimeType: string }
  | { type: "chunk"; offset: number; data: Uint8Array }
  | { type: "summary"; size: number; bytesSent: number; sha256: string };

export interface UploadOpenRequest {
  uploadId: string;
  sessionId: string;
  path: string;
  size: number;
  sha256: string;
  overwrite: boolean;
  /** Absent: the agent's default. */
  keepBackup?: boolean;
}

export interface UploadOutcome {
  size: number;
  sha256: string;
  backupPath: string;
  path: string;
}

/** One open upload channel to the agent. */
export interface AgentUploadStream {
  /** What the agent last reported as written to its temp file. */
  readonly committedOffset: number;
  /** Set once the channel is gone (link loss, agent error, closed by us); the stream is then unusable. */
  readonly failure: Error | undefined;
  /** Resolves once `data` is queued within the agent's credit (not yet written there). */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** After every write: asks the agent to verify and rename into place. */
  /** `sha256`: the whole file's hash when the upload was opened without one. */
  finish(sha256?: string): Promise<UploadOutcome>;
  /** Asks the agent to delete the partial; resolves when it did (or the channel ended). */
  abort(reason: string): Promise<void>;
  /** Stops using the channel; the agent keeps the partial for a later resume. */
  detach(reason: string): void;
}

export interface AgentFiles {
  stat(agentId: string, request: { sessionId: string; path: string }): Promise<StatInfo>;
  listDirectory(agentId: string, request: { sessionId: string; path: string; pageSize: number; pageToken: string }): Promise<DirectoryPage>;
  /** Info first, then chunks, then the summary. Stopping early (or `signal`) cancels the agent's read. */
  readFile(agentId: string, request: { sessionId: string; path: string; offset: number; length: number }, signal?: AbortSignal): AsyncIterable<FileReadEvent>;
  /** Opens or resumes an upload; resolves once the agent said where it stands. */
  openUpload(agentId: string, request: UploadOpenRequest, hooks?: { onEnd?: (stream: AgentUploadStream) => void }): Promise<AgentUploadStream>;
}
