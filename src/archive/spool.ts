/**
 * The index is the last entry but describes every entry before it, so it must be kept somewhere
 * until the end. Keeping it in memory would make memory grow with the archive; it goes to a temp
 * file instead, buffered in small batches. Its SHA-256 and size are computed on the way in, because
 * the tar header and pax record of the index entry need them before the body is written.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, type ReadStream } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Lines are written in batches of about this size: each write is a thread-pool job (see gzip-batches.ts). */
const FLUSH_BYTES = 256 * 1024;

export interface SpoolTotals {
  sha256: string;
  size: number;
  lines: number;
}

export class IndexSpool {
  readonly path: string;
  #handle: FileHandle | undefined;
  /** Lines not yet written: #pending[0, #used), encoded as they come. */
  #pending = Buffer.allocUnsafe(FLUSH_BYTES);
  #used = 0;
  /** The write in progress, if any: writes go one at a time, in order. */
  #writing: Promise<void> | undefined;
  readonly #hash = createHash("sha256");
  #size = 0;
  #lines = 0;

  constructor(dir: string = tmpdir()) {
    this.path = join(dir, `crd-backup-index-${randomUUID()}.jsonl`);
  }

  /**
   * Buffers a line; every FLUSH_BYTES or so the batch goes to the file, and the write in progress
   * is returned: await it before appending more (the writer does), so memory stays bounded.
   */
  append(line: string): Promise<void> | undefined {
    this.#lines += 1;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; a line longer than a batch gets a batch of its own
    if (this.#used + 3 * line.length > this.#pending.length) {
      const writing = this.#used > 0 ? this.#flush() : undefined;
      if (3 * line.length > FLUSH_BYTES) {
        this.#write(Buffer.from(line, "utf8"));
        return this.#writing;
      }
      this.#used += this.#pending.write(line, this.#used, "utf8");
      return writing;
    }
    this.#used += this.#pending.write(line, this.#used, "utf8");
    return undefined;
  }

  #flush(): Promise<void> {
    const data = this.#pending.subarray(0, this.#used);
    this.#pending = Buffer.allocUnsafe(FLUSH_BYTES); // the write keeps `data` until it is done
    this.#used = 0;
    return this.#write(data);
  }

  #write(data: Buffer): Promise<void> {
    this.#hash.update(data);
    this.#size += data.length;
    const previous = this.#writing ?? Promise.resolve();
    const writing = previous.then(async () => {
      // "ax": append, and never into a file someone else created; 0600: object metadata is private.
      this.#handle ??= await open(this.path, "ax", 0o600);
      if (data.length > 0) await this.#handle.writeFile(data);
    });
    this.#writing = writing;
    writing.then(
      () => {
        if (this.#writing === writing) this.#writing = undefined;
      },
      () => undefined, // reported to whoever awaits the returned promise, or by seal
    );
    return writing;
  }

  /** Flush and close; after this the file is complete and can be read back. */
  async seal(): Promise<SpoolTotals> {
    await this.#flush();
    await this.#handle?.close();
    this.#handle = undefined;
    return { sha256: this.#hash.digest("hex"), size: this.#size, lines: this.#lines };
  }

  read(): ReadStream {
    return createReadStream(this.path);
  }

  /** Idempotent, and safe whether or not the file was ever created, or a write is in progress. */
  async remove(): Promise<void> {
    await this.#writing?.catch(() => undefined);
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}
