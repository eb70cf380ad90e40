/**
 * The gzip side of writing an archive: tar bytes are copied into a batch that goes to gzip when
 * full, and `room` says when gzip's buffer is full, so a slow consumer slows the producer. The
 * batch is filled in place by whoever reserved room in it (headers, and bodies that copy
 * themselves), so bytes are copied once on their way to gzip.
 */
import { createGzip, type Gzip, type ZlibOptions } from "node:zlib";

/**
 * gzip's fastest level: a snapshot's time is spent competing with the API server for CPU, and
 * level 1 costs about a third of the default level's CPU for archives ~15% larger.
 */
const GZIP_LEVEL = 1;

/**
 * Entries are copied into batches of this size before they go to gzip, which compresses each
 * write as a job on libuv's thread pool: handing a job over and back costs thread wake-ups
 * (futexes), which on a small, busy machine cost more than the compression of a small write.
 * 256 KiB batches took ~10% less CPU per snapshot than 64 KiB ones (bench/snapshot.ts, 50k
 * objects, 2 vCPUs). Two batches may wait in gzip's buffer, so one compresses while the next fills.
 */
const BATCH_BYTES = 256 * 1024;
/** gzip's output chunks: fewer, larger chunks for the hash, the meter and the uploader. */
const GZIP_CHUNK_BYTES = 64 * 1024;

const noop = (): void => undefined;

export class GzipBatches {
  /** The compressed bytes come out of it; pipe it on. */
  readonly gzip: Gzip;
  /** Bytes of `batch` in use: whoever reserved room writes at `batch[used]`, then moves it on. */
  used = 0;
  /** Tar bytes not yet handed to gzip: #batch[0, used). */
  #batch: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  /**
   * Batches gzip has finished with, for reuse: a new 256 KiB buffer per batch would churn through
   * the archive's size in short-lived buffers, and V8 answers that with old-generation GCs.
   */
  readonly #spareBatches: Buffer[] = [];
  /** Pending while gzip's buffer is full; rejects if the writer fails first. */
  #room: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor() {
    // zlib passes stream options on, though its types do not say so
    const gzipOptions: ZlibOptions & { writableHighWaterMark: number } = {
      level: GZIP_LEVEL,
      writableHighWaterMark: 2 * BATCH_BYTES,
      chunkSize: GZIP_CHUNK_BYTES,
    };
    this.gzip = createGzip(gzipOptions);
    this.gzip.on("drain", () => {
      const room = this.#room;
      this.#room = undefined;
      room?.resolve();
    });
  }

  /** The batch being filled. */
  get batch(): Buffer {
    return this.#batch;
  }

  /** Pending while gzip's buffer is full: await it before adding more. Rejects on fail(). */
  get room(): Promise<void> | undefined {
    return this.#room?.promise;
  }

  /** Makes `bytes` contiguous bytes available in the batch (headers are never split). */
  reserve(bytes: number): void {
    if (this.used + bytes > this.#batch.length) this.flush();
    if (bytes > this.#batch.length) this.#batch = Buffer.allocUnsafe(bytes); // one large entry
  }

  /** Copies `data` into the batch, handing full batches to gzip; large data goes to gzip as it is. */
  append(data: Buffer): void {
    if (data.length >= BATCH_BYTES) {
      this.flush();
      this.#write(data);
      return;
    }
    let from = 0;
    while (from < data.length) {
      if (this.used === this.#batch.length) this.flush();
      const n = data.copy(this.#batch, this.used, from);
      this.used += n;
      from += n;
    }
  }

  flush(): void {
    if (this.used === 0) return;
    const batch = this.#batch;
    // gzip keeps the batch until it has compressed it, then it can be filled again
    this.#batch = this.#spareBatches.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    const used = this.used;
    this.used = 0;
    this.#write(batch.subarray(0, used), batch.length === BATCH_BYTES ? batch : undefined);
  }

  /** Hands the last batch to gzip and ends it. */
  end(): void {
    this.flush();
    this.gzip.end();
  }

  /** Rejects a pending `room` with `err` and destroys gzip. */
  fail(err: unknown): void {
    const room = this.#room;
    this.#room = undefined;
    room?.reject(err);
    if (!this.gzip.destroyed) this.gzip.destroy();
  }

  /** Hands `data` to gzip; `reusable`, if given, becomes a spare batch once gzip is done with it. */
  #write(data: Buffer, reusable?: Buffer): void {
    const done = reusable && ((err?: Error | null) => err || this.#spareBatches.push(reusable));
    if (this.gzip.write(data, done) || this.#room) return;
    let resolve = noop;
    let reject: (err: unknown) => void = noop;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(noop); // rejected only on failure, which whoever awaits it reports
    this.#room = { promise, resolve, reject };
  }
}
