/**
 * Streams an archive: entries in, compressed bytes out through `stream`, which an uploader consumes. The
 * writer knows nothing about storage. Memory stays bounded by what is in flight: entries are
 * copied into a batch that goes to gzip when full, and an add resolves only once gzip has room
 * for more (so a slow consumer slows the producer); the index goes to a temp file instead of
 * memory.
 *
 * This file is the archive's semantics: entry names and order, the index, digests and totals. The
 * tar stream's framing is tar-writer.ts's (header blocks and all, see TarHeaders: a general tar
 * packer costs several stream objects, callbacks and promises per entry, more than the rest of a
 * snapshot's work on a ~2 KiB object); the batches and the compressor's backpressure are
 * compress-batches.ts's. Format version 3 is written unless a caller asks for 1 (tests that keep
 * version 1's reading honest).
 */
import { createHash, hash as oneShotHash } from "node:crypto";
import { Transform, pipeline, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { CrdBackupError } from "../errors.ts";
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSIONS,
  FORMAT_VERSION,
  HEADER_ENTRY,
  INDEX_ENTRIES,
  MAX_ENTRY_SIZE,
  MAX_INDEX_SIZE,
  UID_PATTERN,
  archiveInvalid,
  isSnapshotId,
  quote,
  type ArchiveTotals,
  type ArchiveVersion,
  type IndexRecord,
  type EntryCounts,
  type ObjectRef,
} from "./format.ts";
import { CompressBatches } from "./compress-batches.ts";
import { crdEntryName, namespaceEntryName, objectEntryName, type ContentEntryName } from "./names.ts";
import { EntryOrder } from "./order.ts";
import { describeEntry, describeFields, indexLineOf, type BodyFields } from "./records.ts";
import { IndexSpool } from "./spool.ts";
import {
  END_OF_ARCHIVE,
  TarHeaders,
  headersSize,
  paddingAfter,
  paxRecords,
  ustarPax,
  ustarSize,
} from "./tar-writer.ts";

export interface ArchiveWriterOptions {
  /** Modification time of every entry; defaults to when the writer was created. */
  mtime?: Date;
  /** Where the index is spooled; defaults to os.tmpdir(). */
  tmpDir?: string;
  /** Aborting it aborts the writer, as abort(signal.reason) would. */
  signal?: AbortSignal;
  /** Defaults to FORMAT_VERSION; 1 only to write what older crd-backups wrote. */
  formatVersion?: ArchiveVersion;
}

/** What an entry carries beside its body. */
export interface EntryMeta {
  /** metadata.uid in the source cluster, when the body no longer has it (restore relinks owners by it). */
  uid?: string | undefined;
  /**
   * The body's fields the index needs, when the caller has just read them from the body (a
   * snapshot does, while cleaning each object): the body is then not parsed again. They are
   * checked against the entry name as a parsed body's would be; that they are the body's own is
   * the caller's promise (verify recomputes every index line from the bodies).
   */
  fields?: BodyFields;
}

/**
 * A body that knows its length in bytes and writes itself: the writer reserves room in its batch
 * and has it copied straight there (a snapshot's cleaned objects are spans of a LIST response),
 * so the body never needs a Buffer of its own.
 */
export interface EntryBody {
  readonly length: number;
  copyTo(target: Buffer, at: number): void;
}

type State = "open" | "finishing" | "finished" | "aborted";

const sha256 = (data: Buffer): string => oneShotHash("sha256", data, "hex");
const noop = (): void => undefined;

export class ArchiveWriter {
  readonly snapshotId: string;
  readonly formatVersion: ArchiveVersion;
  /** The archive's compressed bytes. Consume it to the end, or the writer stalls (that is the backpressure). */
  readonly stream: Readable;

  /** The tar bytes on their way to the compressor. */
  readonly #out: CompressBatches;
  readonly #indexLine: (record: IndexRecord) => string;
  readonly #headers: TarHeaders;
  readonly #order = new EntryOrder();
  readonly #spool: IndexSpool;
  readonly #hash = createHash("sha256");
  #size = 0;
  #digest: string | undefined;
  #entries = 0;
  readonly #counts: EntryCounts = { crds: 0, namespaces: 0, objects: 0 };
  /** The index spool's write in progress, if any. */
  #spooling: Promise<void> | undefined;
  #state: State = "open";
  #failure: unknown;
  #totals: ArchiveTotals | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => void this.abort(this.#signal?.reason);

  constructor(snapshotId: string, options: ArchiveWriterOptions = {}) {
    if (!isSnapshotId(snapshotId)) throw archiveInvalid(`invalid snapshot ID ${quote(snapshotId)}`);
    this.snapshotId = snapshotId;
    const version = options.formatVersion ?? FORMAT_VERSION;
    if (!ARCHIVE_VERSIONS.includes(version))
      throw archiveInvalid(`cannot write archive format version ${version}`);
    this.formatVersion = version;
    this.#indexLine = indexLineOf(version);
    this.#headers = new TarHeaders(options.mtime ?? new Date());
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
    this.#out = new CompressBatches(version === 1 ? "gzip" : "zstd");
    pipeline(this.#out.compressor, meter, (err) => {
      if (err) this.#fail(meter.errored ?? err); // the consumer's own error, not "premature close"
    });

    const header = { format: ARCHIVE_FORMAT, formatVersion: version, snapshotId };
    const headerBody = Buffer.from(JSON.stringify(header), "utf8");
    this.#order.accept(HEADER_ENTRY, { kind: "header" });
    this.#writeEntry(HEADER_ENTRY, headerBody, sha256(headerBody));

    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#onAbort();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Each add resolves, with the size in bytes of the body as stored, once there is room for more
   * downstream; await it before the next add. A rejected add whose entry was invalid (bad name,
   * body not matching it, out of order) leaves the writer usable; any other failure ends it.
   */
  addCrd(name: string, body: Buffer, meta: EntryMeta = {}): Promise<number> {
    return this.#add(() => [crdEntryName(name), { kind: "crd", name }], body, meta);
  }

  addNamespace(name: string, body: Buffer, meta: EntryMeta = {}): Promise<number> {
    return this.#add(() => [namespaceEntryName(name), { kind: "namespace", name }], body, meta);
  }

  addObject(ref: ObjectRef, body: Buffer | EntryBody, meta: EntryMeta = {}): Promise<number> {
    const copy: ObjectRef = { group: ref.group, version: ref.version, plural: ref.plural, name: ref.name };
    if (ref.namespace !== undefined) copy.namespace = ref.namespace;
    return this.#add(() => [objectEntryName(copy), { kind: "object", ref: copy }], body, meta);
  }

  /**
   * Write the index, end the tar and compressed streams, and resolve once the consumer has read the last
   * byte of `stream`. The totals are what the manifest records.
   */
  async finish(): Promise<ArchiveTotals> {
    if (this.#state !== "open") throw this.#unusable();
    this.#state = "finishing";
    try {
      this.#checkAlive();
      const index = await this.#spool.seal();
      if (index.size > MAX_INDEX_SIZE)
        throw archiveInvalid(`${INDEX_ENTRIES[this.formatVersion]} would exceed ${MAX_INDEX_SIZE} bytes`);
      await this.#writeIndex(index.size, index.sha256);
      this.#out.append(END_OF_ARCHIVE);
      this.#out.end();
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
      this.#state = "finished";
      return this.#totals;
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
    await this.#spool.remove().catch(noop); // never rejects: callers abort on their own error paths
  }

  /**
   * Validate, then write at once, in call order: a bad entry rejects only its own call and the
   * archive stays usable. The returned promise is the backpressure.
   */
  #add(name: () => [string, ContentEntryName], body: Buffer | EntryBody, meta: EntryMeta): Promise<number> {
    let size: number;
    try {
      if (this.#state !== "open") throw this.#unusable();
      this.#checkAlive();
      size = this.#addEntry(name, body, meta);
    } catch (err) {
      return Promise.reject(err);
    }
    const room = this.#out.room;
    const wait = this.#spooling && room ? Promise.all([this.#spooling, room]) : (this.#spooling ?? room);
    return wait ? wait.then(() => size) : Promise.resolve(size);
  }

  /**
   * An EntryBody is copied straight into the batch, behind room for its headers: it needs no
   * Buffer of its own. Nothing counts as written until the entry has passed every check, so a
   * refused entry leaves no trace.
   */
  #addEntry(name: () => [string, ContentEntryName], body: Buffer | EntryBody, meta: EntryMeta) {
    const [entry, parsed] = name();
    const uid = meta.uid;
    if (uid !== undefined && !UID_PATTERN.test(uid)) {
      throw archiveInvalid(`archive entry ${quote(entry)}: ${quote(uid)} is not a valid uid`, { entry });
    }
    if (body.length > MAX_ENTRY_SIZE) {
      throw archiveInvalid(`archive entry ${quote(entry)} is larger than ${MAX_ENTRY_SIZE} bytes`, { entry });
    }
    const v1 = this.formatVersion === 1;
    const pax = v1 ? paxRecords(entry, uid) : undefined;
    const ustar = v1 ? "" : ustarPax(entry, uid);
    let bytes: Buffer;
    const inPlace = !Buffer.isBuffer(body);
    if (inPlace) {
      const headers = pax ? headersSize(pax.length) : ustarSize(ustar.length);
      const out = this.#out;
      out.reserve(headers + body.length);
      const at = out.used + headers;
      body.copyTo(out.batch, at);
      bytes = out.batch.subarray(at, at + body.length);
    } else {
      bytes = body;
    }
    const hash = sha256(bytes);
    const record = meta.fields
      ? describeFields(entry, parsed, bytes.length, hash, uid, meta.fields)
      : describeEntry(entry, parsed, bytes, hash, uid);
    const line = this.#indexLine(record);
    this.#order.accept(entry, parsed); // it records the entry, so only once everything else passed

    this.#writeHeaders(entry, pax ? pax.withHash(hash) : ustar, bytes.length);
    if (inPlace) this.#out.used += bytes.length;
    else this.#out.append(bytes);
    this.#out.append(paddingAfter(bytes.length));
    this.#entries += 1;
    if (parsed.kind === "crd") this.#counts.crds += 1;
    else if (parsed.kind === "namespace") this.#counts.namespaces += 1;
    else this.#counts.objects += 1;
    const spooled = this.#spool.append(line);
    if (spooled) {
      const spooling = this.#guard(spooled);
      this.#spooling = spooling;
      spooling.then(() => {
        if (this.#spooling === spooling) this.#spooling = undefined;
      }, noop);
    }
    return bytes.length;
  }

  /** A failure of the writer's own I/O ends the writer, and is what every later call reports. */
  #guard(work: Promise<void>): Promise<void> {
    return work.catch((err: unknown) => {
      this.#fail(err);
      throw this.#failure;
    });
  }

  /** Throws the failure that ended the writer, noticing a consumer that destroyed the stream. */
  #checkAlive(): void {
    // A consumer that destroyed the stream may not have been noticed by the pipeline yet.
    if (this.stream.destroyed) this.#fail(this.stream.errored ?? this.#closedEarly());
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Headers, body, padding: appended to the batch. */
  #writeEntry(entry: string, body: Buffer, hash: string): void {
    this.#writeHeaders(entry, this.#plainPax(entry, hash), body.length);
    this.#out.append(body);
    this.#out.append(paddingAfter(body.length));
    this.#entries += 1;
  }

  /** An entry without a uid: version 1's path and hash records; version 3 has none. */
  #plainPax(entry: string, hash: string): string {
    return this.formatVersion === 1
      ? paxRecords(entry, undefined).withHash(hash)
      : ustarPax(entry, undefined);
  }

  /** The entry's header blocks (version 1: always a pax header), contiguous in the batch. */
  #writeHeaders(entry: string, pax: string, size: number): void {
    const out = this.#out;
    if (this.formatVersion === 1) {
      out.reserve(headersSize(pax.length));
      out.used = this.#headers.write(out.batch, out.used, pax, size);
    } else {
      out.reserve(ustarSize(pax.length));
      out.used = this.#headers.writeUstar(out.batch, out.used, entry, pax, size);
    }
  }

  /** The index is streamed from the spool file, waiting for room like any entry. */
  async #writeIndex(size: number, hash: string): Promise<void> {
    const entry = INDEX_ENTRIES[this.formatVersion];
    this.#writeHeaders(entry, this.#plainPax(entry, hash), size);
    let read = 0;
    for await (const chunk of this.#spool.read()) {
      this.#out.append(chunk as Buffer);
      read += (chunk as Buffer).length;
      const room = this.#out.room;
      if (room) await room;
      this.#checkAlive();
    }
    if (read !== size) throw new Error(`${entry}: spooled ${size} bytes, read back ${read}`);
    this.#out.append(paddingAfter(size));
    this.#entries += 1;
  }

  #fail(err: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    if (!this.stream.destroyed) this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
    this.#out.fail(err); // rejects a pending wait for room, destroys the compressor
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
