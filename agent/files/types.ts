// The agent's own description of a directory entry (domain type; the handler maps it to the wire message).

export type FileEntryType = "file" | "dir" | "symlink" | "other";

export interface FileEntry {
  name: string;
  type: FileEntryType;
  /** Bytes; for a symlink the length of its target text, as lstat reports it. */
  size: number;
  /** Permission bits only (mode & 0o7777); the kind of entry is in `type`. */
  mode: number;
  modifiedMs: number;
}
