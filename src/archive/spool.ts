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

const FLUSH_BYTES = 64 * 1024;

export interface SpoolTotals {
  sha256: string;
  size: number;
  lines: number;
}

export class IndexSpool {
  readonly path: string;
  #handle: FileHandle | undefined;
  #pending: string[] = [];
  #pendingBytes = 0;
  readonly #hash = createHash("sha256");
  #size = 0;
  #lines = 0;

  constructor(dir: string = tmpdir()) {
    this.path = join(dir, `crd-backup-index-${randomUUID()}.jsonl`);
  }

  /** Callers await each append before the next; the writer's queue guarantees that. */
  async append(line: string): Promise<void> {
    const bytes = Buffer.byteLength(line, "utf8");
    this.#hash.update(line, "utf8");
    this.#size += bytes;
    this.#lines += 1;
    this.#pending.push(line);
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= FLUSH_BYTES) await this.#flush();
  }

  async #flush(): Promise<void> {
    // "ax": append, and never into a file someone else created; 0600: object metadata is private.
    this.#handle ??= await open(this.path, "ax", 0o600);
    if (this.#pending.length === 0) return;
    const data = this.#pending.join("");
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#handle.writeFile(data, "utf8");
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

  /** Idempotent, and safe whether or not the file was ever created. */
  async remove(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}
