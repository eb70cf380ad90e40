/**
 * Streams an archive: entries in, gzip bytes out through `stream`, which an uploader consumes. The
 * writer knows nothing about storage. Memory stays bounded by what is in flight: entries are
 * copied into a batch that goes to gzip when full, and an add resolves only once gzip has room
 * for more (so a slow consumer slows the producer); the index goes to a temp file instead of
 * memory.
 *
 * The tar stream is written here, header blocks and all (see TarHeaders): a general tar packer
 * costs several stream objects, callbacks and promises per entry, more than the rest of a
 * snapshot's work on a ~2 KiB object.
 */
import { createHash, hash as oneShotHash } from "node:crypto";
import { Transform, pipeline, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { createGzip, type Gzip, type ZlibOptions } from "node:zlib";
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
import { describeEntry, describeFields, indexLine, type BodyFields } from "./records.ts";
import { IndexSpool } from "./spool.ts";

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

const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);
const TYPE_FILE = 0x30; // '0'
const TYPE_PAX = 0x78; // 'x'
const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * ustar header blocks as tar-stream wrote them (so archives stay byte for byte what they were):
 * every header is named "PaxHeader" (the pax path record is authoritative), mode 0644, uid and
 * gid 0, the snapshot's mtime; only the size, the type flag and the checksum vary.
 */
class TarHeaders {
  readonly #template = Buffer.alloc(BLOCK);
  /** Checksum of the template, with the checksum field counted as spaces. */
  readonly #sum: number;

  constructor(mtime: Date) {
    const t = this.#template;
    const octal = (value: number, digits: number) => `${value.toString(8).padStart(digits, "0")} `;
    t.write("PaxHeader", 0, "latin1");
    t.write(octal(0o644, 6), 100, "latin1");
    t.write(octal(0, 6), 108, "latin1");
    t.write(octal(0, 6), 116, "latin1");
    t.write(octal((mtime.getTime() / 1000) | 0, 11), 136, "latin1");
    t.write("ustar\u000000", 257, "latin1");
    t.write(octal(0, 6), 329, "latin1");
    t.write(octal(0, 6), 337, "latin1");
    let sum = 8 * 0x20;
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += t[i]!;
    this.#sum = sum;
  }

  /** One header block at `out[at]`. Sizes stay below 8 GiB (11 octal digits): entries are capped far lower. */
  write(out: Buffer, at: number, type: number, size: number): void {
    this.#template.copy(out, at);
    out[at + 135] = 0x20;
    out[at + 156] = type;
    let sum = this.#sum + type + 0x20;
    // octal digits written as bytes: a header per entry makes string formatting show in profiles
    for (let i = 10, v = size; i >= 0; i--, v = Math.floor(v / 8)) {
      const digit = 0x30 + (v % 8);
      out[at + 124 + i] = digit;
      sum += digit;
    }
    for (let i = 5, v = sum; i >= 0; i--, v = Math.floor(v / 8)) out[at + 148 + i] = 0x30 + (v % 8);
    out[at + 154] = 0x20;
  }
}

/**
 * A pax record: its own length in decimal, a space, key=value, a newline. Entry names (by their
 * grammar), uids (by UID_PATTERN) and hashes are ASCII, so characters are bytes.
 */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let digits = String(body.length).length;
  if (body.length + digits >= 10 ** digits) digits++;
  return `${body.length + digits}${body}`;
}

/** An entry's pax records, whose length is known before its hash (always 64 hex digits) is. */
function paxRecords(entry: string, uid: string | undefined) {
  const path = paxRecord("path", entry);
  const owner = uid === undefined ? "" : paxRecord(PAX_UID, uid);
  return {
    length: path.length + SHA256_RECORD_LENGTH + owner.length,
    withHash: (hash: string) => path + paxRecord(PAX_SHA256, hash) + owner,
  };
}
const SHA256_RECORD_LENGTH = paxRecord(PAX_SHA256, "0".repeat(64)).length;

/** Bytes taken by the pax header block, the records padded to a block, and the ustar header block. */
const headersSize = (paxLength: number): number => BLOCK + paxLength + padding(paxLength) + BLOCK;

const sha256 = (data: Buffer): string => oneShotHash("sha256", data, "hex");
const noop = (): void => undefined;

export class ArchiveWriter {
  readonly snapshotId: string;
  /** The archive's gzip bytes. Consume it to the end, or the writer stalls (that is the backpressure). */
  readonly stream: Readable;

  readonly #gzip: Gzip;
  readonly #headers: TarHeaders;
  readonly #order = new EntryOrder();
  readonly #spool: IndexSpool;
  readonly #hash = createHash("sha256");
  #size = 0;
  #digest: string | undefined;
  #entries = 0;
  readonly #counts: EntryCounts = { crds: 0, namespaces: 0, objects: 0 };
  /** Tar bytes not yet handed to gzip: #batch[0, #used). */
  #batch: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  /**
   * Batches gzip has finished with, for reuse: a new 256 KiB buffer per batch would churn through
   * the archive's size in short-lived buffers, and V8 answers that with old-generation GCs.
   */
  readonly #spareBatches: Buffer[] = [];
  #used = 0;
  /** Pending while gzip's buffer is full; rejects if the writer fails first. */
  #room: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
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
    // zlib passes stream options on, though its types do not say so
    const gzipOptions: ZlibOptions & { writableHighWaterMark: number } = {
      level: GZIP_LEVEL,
      writableHighWaterMark: 2 * BATCH_BYTES,
      chunkSize: GZIP_CHUNK_BYTES,
    };
    this.#gzip = createGzip(gzipOptions);
    this.#gzip.on("drain", () => {
      const room = this.#room;
      this.#room = undefined;
      room?.resolve();
    });
    pipeline(this.#gzip, meter, (err) => {
      if (err) this.#fail(meter.errored ?? err); // the consumer's own error, not "premature close"
    });

    const header = { format: ARCHIVE_FORMAT, formatVersion: FORMAT_VERSION, snapshotId };
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
   * Write the index, end the tar and gzip streams, and resolve once the consumer has read the last
   * byte of `stream`. The totals are what the manifest records.
   */
  async finish(): Promise<ArchiveTotals> {
    if (this.#state !== "open") throw this.#unusable();
    this.#state = "finishing";
    try {
      this.#checkAlive();
      const index = await this.#spool.seal();
      if (index.size > MAX_INDEX_SIZE)
        throw archiveInvalid(`index.jsonl would exceed ${MAX_INDEX_SIZE} bytes`);
      await this.#writeIndex(index.size, index.sha256);
      this.#append(ZEROS); // the end of the tar stream: two zero blocks
      this.#flush();
      this.#gzip.end();
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
    const room = this.#room?.promise;
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
    const pax = paxRecords(entry, uid);
    let bytes: Buffer;
    const inPlace = !Buffer.isBuffer(body);
    if (inPlace) {
      const headers = headersSize(pax.length);
      this.#reserve(headers + body.length);
      const at = this.#used + headers;
      body.copyTo(this.#batch, at);
      bytes = this.#batch.subarray(at, at + body.length);
    } else {
      bytes = body;
    }
    const hash = sha256(bytes);
    const record = meta.fields
      ? describeFields(entry, parsed, bytes.length, hash, uid, meta.fields)
      : describeEntry(entry, parsed, bytes, hash, uid);
    const line = indexLine(record);
    this.#order.accept(entry, parsed); // it records the entry, so only once everything else passed

    this.#writeHeaders(pax.withHash(hash), bytes.length);
    if (inPlace) this.#used += bytes.length;
    else this.#append(bytes);
    this.#append(ZEROS.subarray(0, padding(bytes.length)));
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
    this.#writeHeaders(paxRecords(entry, undefined).withHash(hash), body.length);
    this.#append(body);
    this.#append(ZEROS.subarray(0, padding(body.length)));
    this.#entries += 1;
  }

  /** The pax header block, the pax records and the ustar header block, contiguous in the batch. */
  #writeHeaders(pax: string, size: number): void {
    this.#reserve(headersSize(pax.length));
    const out = this.#batch;
    let at = this.#used;
    this.#headers.write(out, at, TYPE_PAX, pax.length);
    at += BLOCK;
    at += out.write(pax, at, "latin1");
    out.fill(0, at, at + padding(pax.length));
    at += padding(pax.length);
    this.#headers.write(out, at, TYPE_FILE, size);
    this.#used = at + BLOCK;
  }

  /** The index is streamed from the spool file, waiting for room like any entry. */
  async #writeIndex(size: number, hash: string): Promise<void> {
    this.#writeHeaders(paxRecords(INDEX_ENTRY, undefined).withHash(hash), size);
    let read = 0;
    for await (const chunk of this.#spool.read()) {
      this.#append(chunk as Buffer);
      read += (chunk as Buffer).length;
      if (this.#room) await this.#room.promise;
      this.#checkAlive();
    }
    if (read !== size) throw new Error(`index.jsonl: spooled ${size} bytes, read back ${read}`);
    this.#append(ZEROS.subarray(0, padding(size)));
    this.#entries += 1;
  }

  /** Makes `bytes` contiguous bytes available in the batch (headers are never split). */
  #reserve(bytes: number): void {
    if (this.#used + bytes > this.#batch.length) this.#flush();
    if (bytes > this.#batch.length) this.#batch = Buffer.allocUnsafe(bytes); // one large entry
  }

  /** Copies `data` into the batch, handing full batches to gzip; large data goes to gzip as it is. */
  #append(data: Buffer): void {
    if (data.length >= BATCH_BYTES) {
      this.#flush();
      this.#write(data);
      return;
    }
    let from = 0;
    while (from < data.length) {
      if (this.#used === this.#batch.length) this.#flush();
      const n = data.copy(this.#batch, this.#used, from);
      this.#used += n;
      from += n;
    }
  }

  #flush(): void {
    if (this.#used === 0) return;
    const batch = this.#batch;
    // gzip keeps the batch until it has compressed it, then it can be filled again
    this.#batch = this.#spareBatches.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    const used = this.#used;
    this.#used = 0;
    this.#write(batch.subarray(0, used), batch.length === BATCH_BYTES ? batch : undefined);
  }

  /** Hands `data` to gzip; `reusable`, if given, becomes a spare batch once gzip is done with it. */
  #write(data: Buffer, reusable?: Buffer): void {
    const done = reusable && ((err?: Error | null) => err || this.#spareBatches.push(reusable));
    if (this.#gzip.write(data, done) || this.#room) return;
    let resolve = noop;
    let reject: (err: unknown) => void = noop;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(noop); // rejected only on failure, which whoever awaits it reports
    this.#room = { promise, resolve, reject };
  }

  #fail(err: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    const room = this.#room;
    this.#room = undefined;
    room?.reject(err);
    if (!this.stream.destroyed) this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
    if (!this.#gzip.destroyed) this.#gzip.destroy();
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
