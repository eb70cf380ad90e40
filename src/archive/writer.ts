/**
 * Streams an archive: entries in, gzip bytes out through `stream`, which an uploader consumes. The
 * writer knows nothing about storage. Memory stays bounded by what is in flight: each add resolves
 * only once its entry has been handed on to gzip (so a slow consumer slows the producer), and the
 * index goes to a temp file instead of memory.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { Transform, pipeline, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { createGzip } from "node:zlib";
import * as tar from "tar-stream";
import { CrdBackupError } from "../errors.ts";
import {
  ARCHIVE_FORMAT,
  FORMAT_VERSION,
  HEADER_ENTRY,
  INDEX_ENTRY,
  MAX_ENTRY_SIZE,
  MAX_INDEX_SIZE,
  PAX_SHA256,
  PAX_UID,
  UID_PATTERN,
  archiveInvalid,
  isSnapshotId,
  quote,
  type ArchiveTotals,
  type EntryCounts,
  type ObjectRef,
} from "./format.ts";
import { crdEntryName, namespaceEntryName, objectEntryName, type ContentEntryName } from "./names.ts";
import { EntryOrder } from "./order.ts";
import { describeEntry, indexLine } from "./records.ts";
import { IndexSpool } from "./spool.ts";

/**
 * gzip's fastest level: a snapshot's time is spent competing with the API server for CPU, and
 * level 1 costs about a third of the default level's CPU for archives ~15% larger.
 */
const GZIP_LEVEL = 1;

export interface ArchiveWriterOptions {
  /** Modification time of every entry; defaults to when the writer was created. */
  mtime?: Date;
  /** Where the index is spooled; defaults to os.tmpdir(). */
  tmpDir?: string;
  /** Aborting it aborts the writer, as abort(signal.reason) would. */
  signal?: AbortSignal;
}

/** What an entry carries beside its body. */
export interface EntryMeta {
  /** metadata.uid in the source cluster, when the body no longer has it (restore relinks owners by it). */
  uid?: string | undefined;
}

type State = "open" | "finishing" | "finished" | "aborted";

/**
 * tar-stream emits many 512-byte blocks per entry, and zlib runs every write as a separate
 * thread-pool job; batching them makes small entries several times cheaper.
 */
const BATCH_BYTES = 64 * 1024;

function coalesce(limit: number): Transform {
  let chunks: Buffer[] = [];
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      size += chunk.length;
      if (size < limit) return callback();
      const batch = Buffer.concat(chunks, size);
      chunks = [];
      size = 0;
      callback(null, batch);
    },
    flush(callback) {
      callback(null, size > 0 ? Buffer.concat(chunks, size) : undefined);
    },
  });
}

const sha256 = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");
const noop = (): void => undefined;

export class ArchiveWriter {
  readonly snapshotId: string;
  /** The archive's gzip bytes. Consume it to the end, or the writer stalls (that is the backpressure). */
  readonly stream: Readable;

  readonly #pack = tar.pack();
  readonly #mtime: Date;
  readonly #order = new EntryOrder();
  readonly #spool: IndexSpool;
  readonly #hash = createHash("sha256");
  #size = 0;
  #digest: string | undefined;
  #entries = 0;
  readonly #counts: EntryCounts = { crds: 0, namespaces: 0, objects: 0 };
  /** Writes run one at a time, in call order; the chain itself never rejects. */
  #queue: Promise<void> = Promise.resolve();
  #state: State = "open";
  #failure: unknown;
  #totals: ArchiveTotals | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => void this.abort(this.#signal?.reason);

  constructor(snapshotId: string, options: ArchiveWriterOptions = {}) {
    if (!isSnapshotId(snapshotId)) throw archiveInvalid(`invalid snapshot ID ${quote(snapshotId)}`);
    this.snapshotId = snapshotId;
    this.#mtime = options.mtime ?? new Date();
    this.#spool = new IndexSpool(options.tmpDir);

    // Hash and count the compressed bytes as they leave: that is what storage will hold.
    const meter = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.#hash.update(chunk);
        this.#size += chunk.length;
        callback(null, chunk);
      },
      flush: (callback) => {
        this.#digest = this.#hash.digest("hex");
        callback();
      },
    });
    this.stream = meter;
    pipeline(this.#pack, coalesce(BATCH_BYTES), createGzip({ level: GZIP_LEVEL }), meter, (err) => {
      if (err) this.#fail(meter.errored ?? err); // the consumer's own error, not "premature close"
    });

    const header = { format: ARCHIVE_FORMAT, formatVersion: FORMAT_VERSION, snapshotId };
    const headerBody = Buffer.from(JSON.stringify(header), "utf8");
    this.#order.accept(HEADER_ENTRY, { kind: "header" });
    // A failure here is recorded in #failure and reported by every later call.
    this.#enqueue(() => this.#writeEntry(HEADER_ENTRY, headerBody, sha256(headerBody))).catch(noop);

    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#onAbort();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Each add resolves once the entry has been handed on downstream; await it before the next add.
   * A rejected add whose entry was invalid (bad name, body not matching it, out of order) leaves the
   * writer usable; any other failure ends it.
   */
  addCrd(name: string, body: Buffer, meta: EntryMeta = {}): Promise<void> {
    return this.#add(() => [crdEntryName(name), { kind: "crd", name }], body, meta);
  }

  addNamespace(name: string, body: Buffer, meta: EntryMeta = {}): Promise<void> {
    return this.#add(() => [namespaceEntryName(name), { kind: "namespace", name }], body, meta);
  }

  addObject(ref: ObjectRef, body: Buffer, meta: EntryMeta = {}): Promise<void> {
    const copy: ObjectRef = { group: ref.group, version: ref.version, plural: ref.plural, name: ref.name };
    if (ref.namespace !== undefined) copy.namespace = ref.namespace;
    return this.#add(() => [objectEntryName(copy), { kind: "object", ref: copy }], body, meta);
  }

  /**
   * Write the index, end the tar and gzip streams, and resolve once the consumer has read the last
   * byte of `stream`. The totals are what the manifest records.
   */
  async finish(): Promise<ArchiveTotals> {
    if (this.#state !== "open") throw this.#unusable();
    this.#state = "finishing";
    try {
      await this.#enqueue(async () => {
        const index = await this.#spool.seal();
        if (index.size > MAX_INDEX_SIZE)
          throw archiveInvalid(`index.jsonl would exceed ${MAX_INDEX_SIZE} bytes`);
        await this.#writeIndex(index.size, index.sha256);
        this.#pack.finalize();
        await finished(this.stream);
        if (this.#digest === undefined) throw new Error("archive stream ended without a digest");
        this.#totals = {
          sha256: this.#digest,
          size: this.#size,
          entries: this.#entries,
          indexSha256: index.sha256,
          indexEntries: index.lines,
          counts: { ...this.#counts },
        };
      });
      this.#state = "finished";
      return this.#totals!;
    } catch (err) {
      await this.abort(err);
      throw this.#failure;
    } finally {
      this.#signal?.removeEventListener("abort", this.#onAbort);
      await this.#spool.remove();
    }
  }

  /**
   * Stop: `stream` is destroyed with the error (so an upload in progress fails rather than storing a
   * truncated archive), pending adds reject, and the temp file is removed. Safe to call repeatedly.
   */
  async abort(err?: unknown): Promise<void> {
    if (this.#state === "finished") return;
    this.#state = "aborted";
    this.#fail(
      err ?? new CrdBackupError("ABORTED", `writing the archive of snapshot ${this.snapshotId} was aborted`),
    );
    this.#signal?.removeEventListener("abort", this.#onAbort);
    await this.#queue;
    await this.#spool.remove().catch(noop); // never rejects: callers abort on their own error paths
  }

  /** Validate synchronously, so a bad entry rejects only its own call and the archive stays usable. */
  #add(name: () => [string, ContentEntryName], body: Buffer, meta: EntryMeta): Promise<void> {
    let prepared: { entry: string; kind: ContentEntryName["kind"]; hash: string; line: string };
    try {
      prepared = this.#prepare(name, body, meta);
    } catch (err) {
      return Promise.reject(err);
    }
    const { entry, kind, hash, line } = prepared;
    return this.#enqueue(async () => {
      await this.#writeEntry(entry, body, hash, meta.uid);
      await this.#spool.append(line);
      if (kind === "crd") this.#counts.crds += 1;
      else if (kind === "namespace") this.#counts.namespaces += 1;
      else this.#counts.objects += 1;
    });
  }

  #prepare(name: () => [string, ContentEntryName], body: Buffer, meta: EntryMeta) {
    if (this.#state !== "open") throw this.#unusable();
    const [entry, parsed] = name();
    if (body.length > MAX_ENTRY_SIZE) {
      throw archiveInvalid(`archive entry ${quote(entry)} is larger than ${MAX_ENTRY_SIZE} bytes`, { entry });
    }
    if (meta.uid !== undefined && !UID_PATTERN.test(meta.uid)) {
      throw archiveInvalid(`archive entry ${quote(entry)}: ${quote(meta.uid)} is not a valid uid`, { entry });
    }
    const hash = sha256(body);
    const line = indexLine(describeEntry(entry, parsed, body, hash, meta.uid));
    this.#order.accept(entry, parsed); // last: it records the entry, so only once everything else passed
    return { entry, kind: parsed.kind, hash, line };
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      // A consumer that destroyed the stream may not have been noticed by the pipeline yet.
      if (this.stream.destroyed) this.#fail(this.stream.errored ?? this.#closedEarly());
      if (this.#failure !== undefined) throw this.#failure;
      try {
        await task();
      } catch (err) {
        // Report the first cause (say, the uploader's error) rather than tar-stream's "destroyed".
        this.#fail(this.stream.errored ?? err);
        throw this.#failure;
      }
    });
    this.#queue = run.then(noop, noop);
    return run;
  }

  /** Resolves once the pack has accepted the whole entry, i.e. when there is room downstream. */
  #writeEntry(entry: string, body: Buffer, hash: string, uid?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pack.entry(this.#header(entry, body.length, hash, uid), body, (err) => {
        if (err) return reject(err);
        this.#entries += 1;
        resolve();
      });
    });
  }

  /** The index is streamed from the spool file, respecting backpressure like any entry. */
  async #writeIndex(size: number, hash: string): Promise<void> {
    let sink: ReturnType<tar.Pack["entry"]> | undefined;
    const done = new Promise<void>((resolve, reject) => {
      sink = this.#pack.entry(this.#header(INDEX_ENTRY, size, hash), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    done.catch(noop); // awaited below; this only keeps an early rejection from being reported as unhandled
    for await (const chunk of this.#spool.read()) {
      if (!sink!.write(chunk as Buffer)) await Promise.race([once(sink!, "drain"), done]);
    }
    sink!.end(undefined);
    await done;
    this.#entries += 1;
  }

  #header(name: string, size: number, hash: string, uid?: string): Parameters<tar.Pack["entry"]>[0] {
    const pax: Record<string, string> = { [PAX_SHA256]: hash };
    if (uid !== undefined) pax[PAX_UID] = uid;
    return { name, size, type: "file", mode: 0o644, mtime: this.#mtime, pax };
  }

  #fail(err: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    if (!this.stream.destroyed) this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  #unusable(): unknown {
    if (this.#failure !== undefined) return this.#failure;
    return archiveInvalid(
      `the archive writer of snapshot ${this.snapshotId} is ${this.#state}; no more entries can be added`,
    );
  }

  #closedEarly(): CrdBackupError {
    return new CrdBackupError(
      "ABORTED",
      `the archive stream of snapshot ${this.snapshotId} was closed before the archive was finished`,
    );
  }
}
