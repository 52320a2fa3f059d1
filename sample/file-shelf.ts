import { randomUUID } from 'node:crypto';

/** The largest file one may share (the offer says its size; the upload must match it). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

/** What one instance keeps at most; beyond either bound the oldest files go. */
export const MAX_SHELF_FILES = 20;
export const MAX_SHELF_BYTES = 64 * 1024 * 1024;

/** What a room hears of a shared file (`shared` push); `fetch { id }` gets its bytes. */
export interface SharedFileInfo {
  id: string;
  room: string;
  name: string;
  type: string;
  size: number;
  from: string;
}

export interface SharedFile extends SharedFileInfo {
  bytes: Buffer;
}

/**
 * The files shared on this instance, in memory, oldest first. Bounded in count and bytes, so a
 * busy room cannot grow the process: adding a file evicts the oldest until both bounds hold.
 */
export class FileShelf {
  private readonly files = new Map<string, SharedFile>();
  private heldBytes = 0;

  constructor(
    private readonly maxFiles = MAX_SHELF_FILES,
    private readonly maxBytes = MAX_SHELF_BYTES,
  ) {}

  get count(): number {
    return this.files.size;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  add(info: Omit<SharedFileInfo, 'id'>, bytes: Buffer): SharedFileInfo {
    const file: SharedFile = { ...info, id: randomUUID(), bytes };
    this.files.set(file.id, file);
    this.heldBytes += bytes.length;
    while (this.files.size > this.maxFiles || this.heldBytes > this.maxBytes) this.evictOldest();
    return { ...info, id: file.id };
  }

  get(id: string): SharedFile | undefined {
    return this.files.get(id);
  }

  private evictOldest(): void {
    const [id, oldest] = this.files.entries().next().value as [string, SharedFile];
    this.files.delete(id);
    this.heldBytes -= oldest.bytes.length;
  }
}
