/**
 * Stores journal segments in order, through a bounded local spool. A segment is uploaded from
 * memory when nothing is waiting before it; otherwise (storage slow or unreachable) it waits on
 * disk in the spool directory, as a file named by its key, so memory holds one segment at most
 * and a killed recorder's successor uploads what it left. The spool is bounded: a segment that
 * does not fit is refused, and the recorder then stops recording until storage is back (and
 * re-lists everything, with a gap: see chain.ts).
 *
 * What the spool holds on start is uploaded as journal segments, so it is kept to this user: the
 * directory is created with mode 0700 and its files with 0600 (they may hold plain cluster
 * content), and only regular files are taken over, never a symbolic link (which would upload
 * whatever it points to). The default spool's directory is checked before this (spool-dir.ts).
 */
import { constants } from "node:fs";
import { lstat, mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isCrdBackupError } from "../../errors.ts";
import type { JournalStats } from "../../report/journal-metrics.ts";
import type { Logger } from "../../report/log.ts";
import type { StorageBackend } from "../../storage/backend.ts";
import { parseSegmentKey } from "../segment-key.ts";
import { storeSignature } from "../../signing/stored.ts";
import type { EncodedSegment } from "../segment-writer.ts";

interface Item {
  key: string;
  size: number;
  /** The bytes, while the segment is held in memory (the head of the queue only). */
  bytes?: Buffer;
  /** The spool file, once written (or being written: `written`). */
  file?: string;
  written?: Promise<void>;
  /** performance.now() at each record's receipt, for the lag. */
  receipts: number[];
}

export interface UploaderOptions {
  dir: string;
  /** Bytes the spool may hold. */
  limit: number;
  stats: JournalStats;
  log: Logger;
}

const TMP = ".tmp";

export class Uploader {
  readonly #storage: StorageBackend;
  readonly #options: UploaderOptions;
  readonly #queue: Item[] = [];
  #running = false;
  #closed = false;
  #waiters: (() => void)[] = [];
  #spoolBytes = 0;
  /** Whether the last upload attempt succeeded. */
  healthy = true;

  constructor(storage: StorageBackend, options: UploaderOptions) {
    this.#storage = storage;
    this.#options = options;
    options.stats.oldestPending = () => {
      let oldest: number | undefined;
      for (const item of this.#queue) {
        const first = item.receipts[0];
        if (first !== undefined && (oldest === undefined || first < oldest)) oldest = first;
      }
      return oldest;
    };
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Takes over what a previous recorder left in the spool, in key order (a chain's order). */
  async init(): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true, mode: 0o700 });
    const names = (await readdir(this.#options.dir)).sort();
    for (const name of names) {
      const file = path.join(this.#options.dir, name);
      if (name.endsWith(TMP)) {
        await unlink(file).catch(() => undefined); // a write the previous recorder did not finish
        continue;
      }
      const key = decodeURIComponent(name);
      if (!parseSegmentKey(key)) continue;
      const info = await lstat(file);
      if (!info.isFile()) {
        this.#options.log.warn("spool entry ignored: not a regular file", { file });
        continue;
      }
      const { size } = info;
      this.#queue.push({ key, size, file, receipts: [] });
      this.#addSpool(size);
    }
    if (this.#queue.length > 0) {
      this.#options.log.info("uploading segments a previous recorder left in the spool", {
        segments: this.#queue.length,
        bytes: this.#spoolBytes,
      });
      this.#kick();
    }
  }

  /**
   * Queues a segment for storage, after every segment queued before it. False when it would not
   * fit in the spool: the caller must then not count it as part of its chain.
   */
  submit(segment: EncodedSegment, receipts: number[]): boolean {
    const item: Item = { key: segment.key, size: segment.bytes.length, receipts };
    if (this.#queue.length === 0) {
      item.bytes = segment.bytes;
    } else {
      if (this.#spoolBytes + item.size > this.#options.limit) return false;
      this.#spool(item, segment.bytes);
    }
    this.#queue.push(item);
    this.#kick();
    return true;
  }

  /** Resolves once nothing is waiting. */
  whenDrained(): Promise<void> {
    if (this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * The last call: waits up to `ms` for the queue to empty, then stops trying. Returns how many
   * segments are still waiting; they stay in the spool for the next recorder.
   */
  async drain(ms: number): Promise<number> {
    const timeout = new AbortController();
    await Promise.race([
      this.whenDrained(),
      sleep(ms, undefined, { signal: timeout.signal }).catch(() => undefined),
    ]);
    timeout.abort();
    this.#closed = true;
    for (const item of this.#queue) if (item.bytes) await this.#spoolNow(item);
    return this.#queue.length;
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    try {
      await this.#work();
    } finally {
      this.#running = false; // in the same turn as the queue was seen empty: a submit after it kicks again
    }
  }

  async #work(): Promise<void> {
    let delay = 250;
    while (this.#queue.length > 0 && !this.#closed) {
      const item = this.#queue[0]!;
      try {
        await this.#upload(item);
      } catch (e) {
        if (this.healthy) {
          this.#options.log.warn("storage unreachable: segments wait in the spool", {
            key: item.key,
            error: e instanceof Error ? e.message.split("\n")[0] : String(e),
          });
        }
        this.healthy = false;
        // on disk, so that a killed recorder's successor still has it
        if (item.bytes) await this.#spoolNow(item).catch(() => undefined);
        await sleep(delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 2, 5000);
        continue;
      }
      delay = 250;
      if (!this.healthy)
        this.#options.log.info("storage reachable again", { waiting: this.#queue.length - 1 });
      this.healthy = true;
      this.#queue.shift();
      if (item.file) {
        await unlink(item.file).catch(() => undefined);
        this.#addSpool(-item.size);
      }
      this.#stored(item);
      if (this.#queue.length === 0) for (const w of this.#waiters.splice(0)) w();
    }
  }

  async #upload(item: Item): Promise<void> {
    await item.written;
    // never through a symbolic link put in place of a spool file
    const bytes =
      item.bytes ?? (await readFile(item.file!, { flag: constants.O_RDONLY | constants.O_NOFOLLOW }));
    // its signature first (when the storage handle signs): a segment is never visible without it
    await storeSignature(this.#storage, item.key, bytes);
    try {
      await this.#storage.createExclusive(item.key, bytes);
    } catch (e) {
      // the key names the bytes' SHA-256: an earlier attempt that got through without an answer
      if (!(isCrdBackupError(e) && e.code === "ALREADY_EXISTS")) throw e;
    }
  }

  #stored(item: Item): void {
    const stats = this.#options.stats;
    const now = performance.now();
    let max = 0;
    for (const r of item.receipts) {
      const lag = (now - r) / 1000;
      stats.observeLag(lag);
      if (lag > max) max = lag;
    }
    stats.segments++;
    stats.lastLag = max;
    stats.lastFlush = Date.now() / 1000;
    this.#options.log.debug("segment stored", {
      key: item.key,
      bytes: item.size,
      records: item.receipts.length,
    });
  }

  #spool(item: Item, bytes: Buffer): void {
    item.file = path.join(this.#options.dir, encodeURIComponent(item.key));
    this.#addSpool(item.size);
    item.written = writeAtomically(item.file, bytes);
  }

  async #spoolNow(item: Item): Promise<void> {
    const bytes = item.bytes;
    if (!bytes || item.file) return;
    this.#spool(item, bytes);
    await item.written;
    item.bytes = undefined;
  }

  #addSpool(n: number): void {
    this.#spoolBytes += n;
    this.#options.stats.spoolBytes = this.#spoolBytes;
  }
}

async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  await writeFile(file + TMP, bytes, { mode: 0o600 });
  await rename(file + TMP, file);
}
