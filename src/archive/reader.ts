/**
 * Reads an archive as a stream of verified entries (docs/format.md, "Verification"), format
 * version 1 (gzip) or 3 (zstd), told apart by the compressed stream's magic number and checked
 * against the header entry. Everything in the archive is untrusted: names are parsed before use,
 * sizes are checked before a body is read, every body is hashed (and, in version 1, checked against
 * its pax record), and the index is checked against the entries through a running hash, so memory
 * holds one entry body at a time whatever the archive's size. Checks that need the whole stream run when iteration ends: an entry is only as trustworthy
 * as the iteration that yielded it, and iteration that throws invalidates what came before.
 */
import { createHash, hash as cryptoHash } from "node:crypto";
import { Readable, Transform, pipeline } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { CrdBackupError } from "../errors.ts";
import {
  ARCHIVE_FORMAT,
  HEADER_ENTRY,
  INDEX_ENTRIES,
  MAX_ENTRY_SIZE,
  MAX_INDEX_SIZE,
  PAX_SHA256,
  PAX_UID,
  SHA256_PATTERN,
  UID_PATTERN,
  archiveInvalid,
  checkFormatVersion,
  isSnapshotId,
  quote,
  type ArchiveExpectation,
  type ArchiveHeader,
  type ArchiveSummary,
  type ArchiveVersion,
  type IndexRecord,
  type ObjectRef,
} from "./format.ts";
import { parseEntryName } from "./names.ts";
import { EntryOrder } from "./order.ts";
import { describeEntry, describeFields, indexLineOf, parseEntryBody } from "./records.ts";
import { scannedFields } from "./reader-fields.ts";
import { readTar, TarFormatError } from "./tar-reader.ts";

interface EntryBase {
  name: string;
  size: number;
  /**
   * SHA-256 of the body: in version 1 already checked against the entry's pax record; in either
   * version checked against the index by the time the iteration ends.
   */
  sha256: string;
}

export type ArchiveEntry =
  | (EntryBase & { kind: "header"; body: Buffer; header: ArchiveHeader })
  | (EntryBase & { kind: "crd" | "namespace"; body: Buffer; record: IndexRecord })
  | (EntryBase & { kind: "object"; ref: ObjectRef; body: Buffer; record: IndexRecord })
  /** The index is streamed, never buffered (it grows with the archive); its lines were checked. */
  | (EntryBase & { kind: "index"; lines: number });

const DECOMPRESSED_CHUNK_BYTES = 64 * 1024;
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** The archive's bytes: a stream from storage, or any (async) iterable of chunks. */
export type ArchiveSource = Readable | AsyncIterable<Buffer> | Iterable<Buffer>;

/** Turn a failure of the byte stream (source, decompressor or tar parser) into one readable line. */
function describeStreamError(err: unknown, after: string | undefined, bytesRead: number): unknown {
  if (err instanceof CrdBackupError) return err; // already ours, or the storage backend's
  const where = after === undefined ? "" : ` after entry ${quote(after)}`;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "Z_BUF_ERROR") {
    return archiveInvalid(
      bytesRead === 0 ? "archive is empty" : `archive is truncated${where}: the compressed data ends early`,
    );
  }
  if (typeof code === "string" && code.startsWith("Z_")) {
    return archiveInvalid(`archive is corrupt${where}: not valid gzip data (${message})`);
  }
  if (typeof code === "string" && code.startsWith("ZSTD_")) {
    return archiveInvalid(`archive is corrupt${where}: not valid zstd data (${message})`);
  }
  if (err instanceof TarFormatError) {
    if (err.kind === "truncated")
      return archiveInvalid(`archive is truncated${where}: the tar data ends early`);
    const what = {
      header: "bad tar header",
      "pax-size": "oversized extended header",
      size: "bad entry size",
    };
    return archiveInvalid(`archive is not a valid tar stream${where}: ${what[err.kind]}`);
  }
  return err; // the source failed (a read error, an abort): not a property of the archive
}

/**
 * The format version an archive's first bytes announce (gzip: 1, zstd: 3), and a stream that
 * still yields those bytes. Anything else is not an archive of any version.
 */
async function sniff(source: Readable): Promise<{ version: ArchiveVersion; input: Readable }> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  const seen: Buffer[] = [];
  while (head.length < ZSTD_MAGIC.length) {
    const next = await chunks.next();
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    seen.push(chunk);
    head = Buffer.concat([head, chunk]);
  }
  const starts = (magic: number[]) => magic.every((b, i) => head[i] === b);
  if (head.length === 0) throw archiveInvalid("archive is empty");
  const version: ArchiveVersion | undefined = starts(GZIP_MAGIC) ? 1 : starts(ZSTD_MAGIC) ? 3 : undefined;
  if (version === undefined) {
    source.destroy();
    throw archiveInvalid(
      "not a crd-backup archive: neither gzip (format version 1) nor zstd (version 3) data",
    );
  }
  async function* replay(): AsyncGenerator<Buffer> {
    yield* seen;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  }
  const input = Readable.from(replay(), { objectMode: false });
  input.once("close", () => source.destroy());
  return { version, input };
}

export interface ReadOptions {
  /**
   * The same bytes were read to the end and verified before (a local copy read again): bodies are
   * scanned for their index fields, not parsed whole again. Every other check still holds: names,
   * sizes, hashes, the index and the whole-archive digest.
   */
  reread?: boolean;
}

/**
 * Iterate the verified entries of an archive; the generator's return value is the summary. Throws
 * CrdBackupError("ARCHIVE_INVALID") for anything wrong with the archive, naming the entry.
 */
export async function* readArchive(
  source: ArchiveSource,
  expected?: ArchiveExpectation,
  read: ReadOptions = {},
): AsyncGenerator<ArchiveEntry, ArchiveSummary, undefined> {
  const archiveHash = createHash("sha256");
  let bytesRead = 0;
  let lastEntry: string | undefined;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      archiveHash.update(chunk);
      bytesRead += chunk.length;
      callback(null, chunk);
    },
  });
  const { version, input } = await sniff(source instanceof Readable ? source : Readable.from(source));
  // larger output chunks than zlib's 16 KiB: most entries then lie within one, and are not copied
  const options = { chunkSize: DECOMPRESSED_CHUNK_BYTES };
  const decompressor = version === 1 ? createGunzip(options) : createZstdDecompress(options);
  pipeline(input, meter, decompressor, () => undefined); // errors surface through the iteration below
  const indexEntry = INDEX_ENTRIES[version];
  const indexLine = indexLineOf(version);

  const order = new EntryOrder();
  const counts = { crds: 0, namespaces: 0, objects: 0 };
  const lines = createHash("sha256"); // running hash of the index lines recomputed from the entries
  let snapshotId: string | undefined;
  let indexSha256: string | undefined;
  let entries = 0;
  let completed = false;

  try {
    for await (const { entry: tarEntry, body: tarBody } of readTar(decompressor)) {
      const { name, type, size } = tarEntry;
      const bad = (why: string) =>
        archiveInvalid(`archive entry ${quote(name)}: ${why}`, { entry: name, snapshotId });
      if (entries === 0 && name !== HEADER_ENTRY) {
        throw archiveInvalid(
          `not a crd-backup archive: the first entry is ${quote(name)}, not ${quote(HEADER_ENTRY)}`,
        );
      }
      const parsed = parseEntryName(name);
      if (type !== "file") throw bad(`is a ${type ?? "non-standard"} entry; only regular files are allowed`);
      order.accept(name, parsed);
      const limit = parsed.kind === "index" ? MAX_INDEX_SIZE : MAX_ENTRY_SIZE;
      if (size > limit) throw bad(`is ${size} bytes, more than the limit of ${limit}`);
      if (parsed.kind === "index" && name !== indexEntry)
        throw bad(`is not the index of format version ${version} (${quote(indexEntry)})`);
      const pax = tarEntry.pax;
      const recorded = pax[PAX_SHA256];
      if (version === 1 && (recorded === undefined || !SHA256_PATTERN.test(recorded)))
        throw bad(`has no valid ${PAX_SHA256} record`);
      if (version !== 1 && recorded !== undefined)
        throw bad(`has a ${PAX_SHA256} record; format version ${version} lists hashes in ${indexEntry}`);
      const uid = pax[PAX_UID];
      if (uid !== undefined && (parsed.kind === "header" || parsed.kind === "index"))
        throw bad(`may not have a ${PAX_UID} record`);
      if (uid !== undefined && !UID_PATTERN.test(uid)) throw bad(`has an invalid ${PAX_UID} record`);
      entries += 1;
      lastEntry = name;

      if (parsed.kind === "index") {
        const hash = createHash("sha256");
        let newlines = 0;
        let read = 0;
        for await (const chunk of tarBody.pieces()) {
          read += chunk.length;
          hash.update(chunk);
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines += 1;
        }
        const sha256 = hash.digest("hex");
        if (read !== size) throw bad(`is ${read} bytes, its header says ${size}`);
        if (recorded !== undefined && sha256 !== recorded)
          throw bad(`the body does not match its ${PAX_SHA256} record`);
        const listed = counts.crds + counts.namespaces + counts.objects;
        if (newlines !== listed) throw bad(`lists ${newlines} entries but the archive has ${listed}`);
        if (sha256 !== lines.digest("hex"))
          throw bad("does not match the entries of the archive (same count, different lines)");
        indexSha256 = sha256;
        yield { kind: "index", name, size, sha256, lines: newlines };
        continue;
      }

      const body = await tarBody.all();
      // one call, no Hash object per entry: a tenth of a second less per 50,000 entries
      const sha256 = cryptoHash("sha256", body, "hex");
      if (body.length !== size) throw bad(`is ${body.length} bytes, its header says ${size}`);
      if (recorded !== undefined && sha256 !== recorded)
        throw bad(`the body does not match its ${PAX_SHA256} record`);

      if (parsed.kind === "header") {
        const doc = parseEntryBody(name, body);
        if (doc["format"] !== ARCHIVE_FORMAT)
          throw archiveInvalid(
            `not a crd-backup archive: ${HEADER_ENTRY} has format ${quote(String(doc["format"]))}`,
          );
        const id = isSnapshotId(doc["snapshotId"]) ? doc["snapshotId"] : undefined;
        checkFormatVersion(doc["formatVersion"], id ?? expected?.snapshotId, "archive");
        if (doc["formatVersion"] !== version)
          throw bad(
            `says format version ${doc["formatVersion"]}, but the archive is ${version === 1 ? "gzip" : "zstd"} data (format version ${version})`,
          );
        if (id === undefined) throw bad("snapshotId is missing or not a snapshot ID");
        if (expected?.snapshotId !== undefined && id !== expected.snapshotId) {
          throw bad(`belongs to snapshot ${id}, not ${expected.snapshotId}`);
        }
        snapshotId = id;
        const header: ArchiveHeader = {
          format: ARCHIVE_FORMAT,
          formatVersion: version,
          snapshotId: id,
        };
        yield { kind: "header", name, size, sha256, body, header };
        continue;
      }

      const record = read.reread
        ? describeFields(name, parsed, body.length, sha256, uid, scannedFields(name, body))
        : describeEntry(name, parsed, body, sha256, uid);
      lines.update(indexLine(record));
      if (parsed.kind === "crd") counts.crds += 1;
      else if (parsed.kind === "namespace") counts.namespaces += 1;
      else counts.objects += 1;
      if (parsed.kind === "object")
        yield { kind: "object", name, size, sha256, ref: parsed.ref, body, record };
      else yield { kind: parsed.kind, name, size, sha256, body, record };
    }
    if (entries === 0) throw archiveInvalid("not a crd-backup archive: it contains no tar entries");
    if (!order.sawIndex)
      throw archiveInvalid(
        `archive is truncated after entry ${quote(lastEntry ?? "")}: index.jsonl is missing`,
      );
    completed = true;
  } catch (err) {
    throw describeStreamError(err, lastEntry, bytesRead);
  } finally {
    // Stopped early (an error, or the consumer broke out): release the source and the parsers.
    if (!completed) {
      decompressor.destroy();
      meter.destroy();
      input.destroy();
    }
  }
  // readTar read decompressor to its end, so every byte has passed the meter
  const summary: ArchiveSummary = {
    snapshotId: snapshotId!,
    sha256: archiveHash.digest("hex"),
    size: bytesRead,
    entries,
    ...counts,
    indexSha256: indexSha256!,
  };
  checkExpected(summary, expected);
  return summary;
}

function checkExpected(actual: ArchiveSummary, expected: ArchiveExpectation | undefined): void {
  if (expected === undefined) return;
  const who = `archive of snapshot ${actual.snapshotId}`;
  const mismatch = (what: string, got: string | number, want: string | number) =>
    archiveInvalid(`${who}: ${what} is ${got}, the manifest says ${want}`, { snapshotId: actual.snapshotId });
  if (actual.size !== expected.size) throw mismatch("size", actual.size, expected.size);
  if (actual.sha256 !== expected.sha256) throw mismatch("sha256", actual.sha256, expected.sha256);
  if (expected.entries !== undefined && actual.entries !== expected.entries) {
    throw mismatch("the number of entries", actual.entries, expected.entries);
  }
  if (expected.indexSha256 !== undefined && actual.indexSha256 !== expected.indexSha256) {
    throw mismatch("the sha256 of index.jsonl", actual.indexSha256, expected.indexSha256);
  }
  const indexed = actual.crds + actual.namespaces + actual.objects;
  if (expected.indexEntries !== undefined && indexed !== expected.indexEntries) {
    throw mismatch("the number of index lines", indexed, expected.indexEntries);
  }
  for (const key of ["crds", "namespaces", "objects"] as const) {
    const want = expected.counts?.[key];
    if (want !== undefined && actual[key] !== want) throw mismatch(`the number of ${key}`, actual[key], want);
  }
}

/** Read and verify a whole archive without keeping its entries; throws ARCHIVE_INVALID on any problem. */
export async function verifyArchive(
  source: ArchiveSource,
  expected?: ArchiveExpectation,
): Promise<ArchiveSummary> {
  const entries = readArchive(source, expected);
  for (;;) {
    const next = await entries.next();
    if (next.done) return next.value;
  }
}
