/**
 * Reading a journal segment back (docs/format.md, "Journal format", "Segment bytes"), with every
 * check the format names: the stored bytes' digest, then each line as segment-format.ts checks it.
 */
import { createHash, hash as hashOnce } from "node:crypto";
import { Readable, Transform } from "node:stream";
import zlib from "node:zlib";
import type { Identities } from "../crypto/keys.ts";
import { decryptStream } from "../crypto/stream.ts";
import { readAll } from "../storage/backend.ts";
import { CrdBackupError } from "../errors.ts";
import { LineReader } from "./line-reader.ts";
import { indexMember } from "./key-index.ts";
import {
  frameOf,
  memberHash,
  type IndexedRecord,
  type RecordIndex,
  type RecordIndexBuilder,
} from "./record-index.ts";
import { segmentKey, type SegmentKey } from "./segment-key.ts";
import {
  checkHeader,
  checkRecord,
  checkTrailer,
  describe,
  invalid,
  parseLine,
  type JournalRecord,
  type SegmentHeader,
  type SegmentTrailer,
} from "./segment-format.ts";

/**
 * Reads a stored segment, checking everything docs/format.md lists for step 4 of a replay: the
 * stored bytes' SHA-256 and the key, the header against the key and `prev`, each body's SHA-256,
 * record times within the window and in order, the trailer's count. Records are yielded as they
 * are read, so a consumer MUST discard what it gathered if the generator throws; the trailer is
 * returned last.
 */
export interface BodyOptions {
  /**
   * Bodies may be views of the decompressed chunk (64 KiB) they were read in, not copies: for a
   * reader that copies or drops each body at once. Copying every body was most of the garbage of
   * `changes` reading 500,000 records, and under load the buffers outlived young-generation
   * collections: peak RSS then rose by 60-100 MiB. A reader that keeps bodies would keep chunks.
   */
  shareBodies?: boolean;
}

export interface ReadOptions extends BodyOptions {
  /** Noted with each record's line offset in the decompressed bytes (record-index.ts). */
  index?: RecordIndexBuilder;
}

export async function* readSegment(
  stored: Readable,
  expected: SegmentKey & { prev: string | null },
  keys?: Identities,
  options: ReadOptions = {},
): AsyncGenerator<JournalRecord, SegmentTrailer> {
  const key = segmentKey(expected);
  const hash = createHash("sha256");
  // the digest is of the stored bytes, ciphertext for an encrypted segment
  const tapped = stored.pipe(
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
  );
  stored.on("error", (e) => tapped.destroy(e));
  let plain: Readable = tapped;
  if (expected.encrypted) {
    if (!keys?.identities.length) {
      stored.destroy();
      throw new CrdBackupError("DECRYPT", `journal segment ${key} is encrypted: give --identity to read it`, {
        key,
      });
    }
    plain = await decryptStream(tapped, keys, `journal segment ${key}`);
  }
  // 64 KiB output chunks, not zlib's 16 KiB: a quarter of the callbacks, and fewer lines straddle two
  const gunzip = zlib.createGunzip({ chunkSize: 64 * 1024 });
  plain.on("error", (e) => gunzip.destroy(e));
  plain.pipe(gunzip);

  const reader = new LineReader(gunzip, key, options.shareBodies ?? false);
  const from = expected.from.getTime();
  const to = expected.to.getTime();
  let header: SegmentHeader | undefined;
  let trailer: SegmentTrailer | undefined;
  let count = 0;
  let lastT = from;
  let sawGap = false;
  try {
    for (;;) {
      const at = reader.position;
      // the buffered fast path first: an await per line and per body was most of a segment's reading
      const line = reader.bufferedLine() ?? (await reader.line());
      if (line === undefined) break;
      if (trailer) throw invalid(key, "data after the trailer");
      const value = parseLine(line, key);
      if (!header) {
        header = checkHeader(value, expected, key);
        continue;
      }
      if (value["op"] === "end") {
        trailer = checkTrailer(value, key);
        continue;
      }
      const record = checkRecord(value, key);
      const t = Date.parse(record.t);
      if (!(t > from && t <= to))
        throw invalid(key, `record time ${record.t} is outside the segment's window`);
      if (t < lastT) throw invalid(key, `record time ${record.t} goes back in time`);
      lastT = t;
      if (record.op === "put") {
        const size = value["size"] as number;
        // the body and its newline in one read
        const both = reader.bufferedBytes(size + 1) ?? (await reader.bytes(size + 1));
        if (both[size] !== 0x0a) throw invalid(key, `${describe(record)}: body not followed by a newline`);
        const body = both.subarray(0, size);
        if (hashOnce("sha256", body, "hex") !== value["sha256"]) {
          throw invalid(key, `${describe(record)}: body SHA-256 does not match its record`);
        }
        record.body = body;
      }
      if (record.op === "gap") sawGap = true;
      options.index?.add(record, at);
      count++;
      yield record;
    }
  } catch (e) {
    stored.destroy();
    if (e instanceof CrdBackupError) throw e;
    throw invalid(key, `not a readable gzip stream (${(e as Error).message})`);
  }
  if (!header) throw invalid(key, "empty segment");
  if (!trailer) throw invalid(key, "truncated: no trailer");
  if (trailer.records !== count)
    throw invalid(key, `trailer counts ${trailer.records} records, the segment holds ${count}`);
  if (sawGap !== expected.gap)
    throw invalid(key, sawGap ? "holds a gap its key does not name" : "its key names a gap it does not hold");
  const digest = hash.digest("hex");
  if (digest !== expected.sha256)
    throw invalid(key, `SHA-256 of the stored bytes is ${digest}, the key says ${expected.sha256}`);
  options.index?.end(trailer);
  return trailer;
}

/**
 * The header alone, of a segment's stored bytes held in memory: their SHA-256 is checked against
 * the key first (so the header, and the key index in it, are what the recorder wrote), then they
 * are decrypted and gunzipped only as far as the first line, which is checked as readSegment
 * checks it. A reader that skips the segment after this has still refused any altered byte.
 */
export async function readSegmentHeader(
  stored: Buffer,
  expected: SegmentKey & { prev: string | null },
  keys?: Identities,
): Promise<SegmentHeader> {
  const key = segmentKey(expected);
  checkStoredDigest(stored, expected);
  let plain: Readable = Readable.from([stored]);
  if (expected.encrypted) plain = await decryptStream(plain, needKeys(keys, key), `journal segment ${key}`);
  const gunzip = zlib.createGunzip();
  plain.on("error", (e) => gunzip.destroy(e));
  plain.pipe(gunzip);
  try {
    const line = await new LineReader(gunzip, key).line();
    if (line === undefined) throw invalid(key, "empty segment");
    return checkHeader(parseLine(line, key), expected, key);
  } catch (e) {
    if (e instanceof CrdBackupError) throw e;
    throw invalid(key, `not a readable gzip stream (${(e as Error).message})`);
  } finally {
    gunzip.destroy();
    plain.destroy();
  }
}

/**
 * The records `wanted` (from the segment's RecordIndex `index`, in order) of a segment's stored
 * bytes held in memory. The bytes' SHA-256 is checked against the key first: the index was built
 * when these very bytes passed every check of readSegment (header and `prev`, times, trailer), so
 * only the records read are parsed, each checked to be the member it was indexed under, and their
 * bodies' SHA-256 checked again. With the trailer's frames, each record is read by inflating from
 * the gzip member holding it (an encrypted segment is decrypted whole first); without, the stream
 * is inflated from the start and stops after the last record.
 */
export async function* readIndexedRecords(
  stored: Buffer,
  expected: SegmentKey,
  index: RecordIndex,
  wanted: readonly IndexedRecord[],
  keys?: Identities,
  options: BodyOptions = {},
): AsyncGenerator<JournalRecord> {
  const key = segmentKey(expected);
  checkStoredDigest(stored, expected);
  if (wanted.length === 0) return;
  const gz = expected.encrypted
    ? await readAll(
        await decryptStream(Readable.from([stored]), needKeys(keys, key), `journal segment ${key}`),
      )
    : stored;
  const { frames } = index;
  let open: { gunzip: zlib.Gunzip; reader: LineReader; start: number } | undefined;
  const inflateFrom = (frame: number) => {
    open?.gunzip.destroy();
    const gunzip = zlib.createGunzip({ chunkSize: 64 * 1024 });
    Readable.from(pieces(gz.subarray(frames ? frames.gz[frame]! : 0))).pipe(gunzip);
    const reader = new LineReader(gunzip, key, options.shareBodies ?? false);
    open = { gunzip, reader, start: frames ? frames.plain[frame]! : 0 };
    return open;
  };
  try {
    for (const { offset, hash } of wanted) {
      const frame = frames ? frameOf(frames, offset) : 0;
      const at = open && open.start + open.reader.position;
      // on in the open stream when it is within the record's frame already, else from the frame
      const { reader, start } =
        open && at! <= offset && (!frames || at! >= frames.plain[frame]!) ? open : inflateFrom(frame);
      await reader.skip(offset - start - reader.position);
      const line = await reader.line();
      if (line === undefined) throw invalid(key, "truncated: a record is past the end");
      const value = parseLine(line, key);
      const record = checkRecord(value, key);
      const member = indexMember(record);
      if (member === undefined || memberHash(member) !== hash)
        throw invalid(key, `the record at offset ${offset} is not the one indexed there`);
      if (record.op === "put") {
        const size = value["size"] as number;
        const body = (await reader.bytes(size + 1)).subarray(0, size);
        if (hashOnce("sha256", body, "hex") !== value["sha256"])
          throw invalid(key, `${describe(record)}: body SHA-256 does not match its record`);
        record.body = body;
      }
      yield record;
    }
  } catch (e) {
    if (e instanceof CrdBackupError) throw e;
    throw invalid(key, `not a readable gzip stream (${(e as Error).message})`);
  } finally {
    open?.gunzip.destroy();
  }
}

/** A buffer in 64 KiB pieces, so the inflater is fed only as far as it is read. */
function* pieces(b: Buffer): Generator<Buffer> {
  for (let i = 0; i < b.length; i += 64 * 1024) yield b.subarray(i, i + 64 * 1024);
}

/** Whether the stored bytes (held, or streamed and hashed as they come) are those the key names. */
export function checkStoredDigest(stored: Buffer, expected: SegmentKey): void;
export function checkStoredDigest(stored: Readable, expected: SegmentKey): Promise<void>;
export function checkStoredDigest(stored: Buffer | Readable, expected: SegmentKey): void | Promise<void> {
  if (!Buffer.isBuffer(stored))
    return (async () => {
      const hash = createHash("sha256");
      for await (const chunk of stored) hash.update(chunk as Buffer);
      sameDigest(hash.digest("hex"), expected);
    })();
  sameDigest(createHash("sha256").update(stored).digest("hex"), expected);
}

function sameDigest(digest: string, expected: SegmentKey): void {
  if (digest !== expected.sha256)
    throw invalid(
      segmentKey(expected),
      `SHA-256 of the stored bytes is ${digest}, the key says ${expected.sha256}`,
    );
}

function needKeys(keys: Identities | undefined, key: string): Identities {
  if (!keys?.identities.length)
    throw new CrdBackupError("DECRYPT", `journal segment ${key} is encrypted: give --identity to read it`, {
      key,
    });
  return keys;
}
