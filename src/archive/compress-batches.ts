/**
 * The compressing side of writing an archive (gzip for format version 1, zstd for 3): tar bytes
 * are copied into a batch that goes to the compressor when full, and `room` says when its buffer
 * is full, so a slow consumer slows the producer. The batch is filled in place by whoever reserved
 * room in it (headers, and bodies that copy themselves), so bytes are copied once on their way.
 */
import {
  constants,
  createGzip,
  createZstdCompress,
  type Gzip,
  type ZlibOptions,
  type ZstdCompress,
} from "node:zlib";

/**
 * The fastest levels: a snapshot's time is spent competing with the API server for CPU. gzip's
 * level 1 costs about a third of the default level's CPU for archives ~15% larger. zstd's level 1
 * was also the smallest on snapshots' archives (bench/size.ts): higher levels find short matches
 * inside the random hex of hashes and uids, which cost more to encode than the literals they save.
 */
const GZIP_LEVEL = 1;
const ZSTD_LEVEL = 1;
export type Compression = "gzip" | "zstd";

/**
 * Entries are copied into batches of this size before they go to the compressor, which compresses each
 * write as a job on libuv's thread pool: handing a job over and back costs thread wake-ups
 * (futexes), which on a small, busy machine cost more than the compression of a small write.
 * 256 KiB batches took ~10% less CPU per snapshot than 64 KiB ones (bench/snapshot.ts, 50k
 * objects, 2 vCPUs). Two batches may wait in the compressor's buffer, so one compresses while the next fills.
 */
const BATCH_BYTES = 256 * 1024;
/** The compressor's output chunks: fewer, larger chunks for the hash, the meter and the uploader. */
const CHUNK_BYTES = 64 * 1024;

const noop = (): void => undefined;

export class CompressBatches {
  /** The compressed bytes come out of it; pipe it on. */
  readonly compressor: Gzip | ZstdCompress;
  /** Bytes of `batch` in use: whoever reserved room writes at `batch[used]`, then moves it on. */
  used = 0;
  /** Tar bytes not yet handed to the compressor: #batch[0, used). */
  #batch: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  /**
   * Batches the compressor has finished with, for reuse: a new 256 KiB buffer per batch would churn through
   * the archive's size in short-lived buffers, and V8 answers that with old-generation GCs.
   */
  readonly #spareBatches: Buffer[] = [];
  /** Pending while the compressor's buffer is full; rejects if the writer fails first. */
  #room: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(compression: Compression) {
    // zlib passes stream options on, though its types do not say so
    const stream = { writableHighWaterMark: 2 * BATCH_BYTES, chunkSize: CHUNK_BYTES };
    const gzipOptions: ZlibOptions & typeof stream = { ...stream, level: GZIP_LEVEL };
    this.compressor =
      compression === "gzip"
        ? createGzip(gzipOptions)
        : createZstdCompress({
            ...stream,
            // the frame's checksum lets `zstd -t` check a stored archive without crd-backup
            params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 1 },
          });
    this.compressor.on("drain", () => {
      const room = this.#room;
      this.#room = undefined;
      room?.resolve();
    });
  }

  /** The batch being filled. */
  get batch(): Buffer {
    return this.#batch;
  }

  /** Pending while the compressor's buffer is full: await it before adding more. Rejects on fail(). */
  get room(): Promise<void> | undefined {
    return this.#room?.promise;
  }

  /** Makes `bytes` contiguous bytes available in the batch (headers are never split). */
  reserve(bytes: number): void {
    if (this.used + bytes > this.#batch.length) this.flush();
    if (bytes > this.#batch.length) this.#batch = Buffer.allocUnsafe(bytes); // one large entry
  }

  /** Copies `data` into the batch, handing full batches to the compressor; large data goes to the compressor as it is. */
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
    // the compressor keeps the batch until it has compressed it, then it can be filled again
    this.#batch = this.#spareBatches.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    const used = this.used;
    this.used = 0;
    this.#write(batch.subarray(0, used), batch.length === BATCH_BYTES ? batch : undefined);
  }

  /** Hands the last batch to the compressor and ends it. */
  end(): void {
    this.flush();
    this.compressor.end();
  }

  /** Rejects a pending `room` with `err` and destroys the compressor. */
  fail(err: unknown): void {
    const room = this.#room;
    this.#room = undefined;
    room?.reject(err);
    if (!this.compressor.destroyed) this.compressor.destroy();
  }

  /** Hands `data` to the compressor; `reusable`, if given, becomes a spare batch once the compressor is done with it. */
  #write(data: Buffer, reusable?: Buffer): void {
    const done = reusable && ((err?: Error | null) => err || this.#spareBatches.push(reusable));
    if (this.compressor.write(data, done) || this.#room) return;
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
