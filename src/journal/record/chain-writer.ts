/**
 * The open segment of one chain and the chain's position (seq, previous SHA-256, last `to`):
 * records are stamped and appended as they arrive, and flush() closes the segment, encodes it
 * with SegmentBuilder and hands it to the uploader. Flushes run one at a time, so segment n+1 is
 * encoded with segment n's hash and queued after it.
 */
import type { Recipients } from "../../crypto/keys.ts";
import type { JournalStats } from "../../report/journal-metrics.ts";
import type { Logger } from "../../report/log.ts";
import type { GapRecord, PendingRecord } from "../segment-format.ts";
import { SegmentBuilder } from "../segment-writer.ts";
import type { Uploader } from "./uploader.ts";

/** A segment is closed early once its uncompressed records pass this (well below MAX_SEGMENT_BYTES). */
export const FLUSH_AT_BYTES = 16 * 1024 * 1024;

/** Where a chain stands: its last stored segment (seq 0 and the base's finishedAt for a new chain). */
export interface ChainPosition {
  cluster: string;
  base: string;
  seq: number;
  prev: string | null;
  to: Date;
}

export interface ChainWriterOptions {
  uploader: Uploader;
  stats: JournalStats;
  log: Logger;
  /** A segment with no records is written only when the last one is older than this. */
  emptyEveryMs: number;
  /** Segments are encrypted to these age recipients; plain when absent. */
  encryptTo?: Recipients;
  /** The uploader refused a segment (spool full): called with the last `to` the chain holds. */
  onOverflow: (since: Date) => void;
}

export class ChainWriter {
  readonly cluster: string;
  readonly base: string;
  /** Per followed resource, the last resourceVersion seen: the next segment's trailer. */
  readonly rvs = new Map<string, string>();
  #seq: number;
  #prev: string | null;
  #lastTo: Date;
  /** Records get times after this (the last segment's `to`), and never go back. */
  #floor: number;
  #lastT = 0;
  #builder = new SegmentBuilder();
  #receipts: number[] = [];
  #lastWritten = Date.now();
  #flushing: Promise<void> = Promise.resolve();
  #overflowed = false;
  #closed = false;
  readonly #options: ChainWriterOptions;

  constructor(position: ChainPosition, options: ChainWriterOptions) {
    this.cluster = position.cluster;
    this.base = position.base;
    this.#seq = position.seq;
    this.#prev = position.prev;
    this.#lastTo = position.to;
    this.#floor = position.to.getTime();
    this.#options = options;
  }

  get seq(): number {
    return this.#seq;
  }

  get lastTo(): Date {
    return this.#lastTo;
  }

  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** A record time: now, but after the last segment's `to` and never before the previous record. */
  #stamp(): number {
    const t = Math.max(Date.now(), this.#lastT, this.#floor + 1);
    this.#lastT = t;
    return t;
  }

  /** Appends a record, stamped with its time `t` here. Dropped while the chain is overflowed or closed. */
  add(record: PendingRecord): void {
    if (this.#overflowed || this.#closed) return;
    this.#builder.add({ t: new Date(this.#stamp()).toISOString(), ...record });
    this.#receipts.push(performance.now());
    this.#options.stats.events++;
  }

  /** Records that intermediate states of `resources` in [from, now] may be missing. */
  addGap(from: Date, reason: string, resources: string[]): void {
    if (this.#overflowed || this.#closed) return;
    const t = new Date(this.#stamp()).toISOString();
    const gap: GapRecord = { t, op: "gap", from: from.toISOString(), to: t, reason, resources };
    this.#builder.add(gap);
    this.#receipts.push(performance.now());
    this.#options.stats.events++;
    this.#options.stats.gaps++;
    this.#options.log.warn("gap recorded", {
      from: gap.from,
      to: gap.to,
      reason,
      resources: resources.join(","),
    });
  }

  /** Waits for a flush when the open segment is large: what keeps memory bounded under a burst. */
  room(): Promise<void> {
    return this.#builder.plainSize >= FLUSH_AT_BYTES ? this.flush(true) : Promise.resolve();
  }

  /**
   * Closes the open segment and queues it. Without `force`, a segment with no records is written
   * only when the previous one is older than emptyEveryMs.
   */
  flush(force = false): Promise<void> {
    this.#flushing = this.#flushing.then(() =>
      this.#flush(force).catch((e: unknown) => {
        this.#options.log.error("journal segment not written", {
          base: this.base,
          error: e instanceof Error ? e.message : String(e),
        });
      }),
    );
    return this.#flushing;
  }

  async #flush(force: boolean): Promise<void> {
    if (this.#overflowed || this.#closed) return;
    const now = Date.now();
    if (this.#builder.records === 0 && !force && now - this.#lastWritten < this.#options.emptyEveryMs) return;
    const builder = this.#builder;
    const receipts = this.#receipts;
    this.#builder = new SegmentBuilder();
    this.#receipts = [];
    const to = Math.max(now, this.#lastT, this.#lastTo.getTime() + 1);
    this.#floor = to; // what arrives from now on goes into the next segment
    const segment = await builder.encode(
      {
        cluster: this.cluster,
        base: this.base,
        seq: this.#seq + 1,
        prev: this.#prev,
        from: this.#lastTo,
        to: new Date(to),
      },
      Object.fromEntries(this.rvs),
      this.#options.encryptTo,
    );
    if (!this.#options.uploader.submit(segment, receipts)) {
      this.#overflowed = true;
      this.#builder = new SegmentBuilder();
      this.#receipts = [];
      this.#options.log.error("spool full: recording stops until storage is back", {
        base: this.base,
        since: this.#lastTo.toISOString(),
      });
      this.#options.onOverflow(this.#lastTo);
      return;
    }
    this.#seq++;
    this.#prev = segment.sha256;
    this.#lastTo = new Date(to);
    this.#lastWritten = now;
  }

  /** Records again after an overflow, continuing the chain from its last stored segment. */
  resume(): void {
    this.#overflowed = false;
  }

  /** The final segment (always written, even empty): the chain's window ends now. */
  async close(): Promise<void> {
    await this.flush(true);
    this.#closed = true;
  }
}
