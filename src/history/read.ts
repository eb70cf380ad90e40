/**
 * The journal as history and changes read it: a chain's segments in order, each checked as a
 * replay checks it (segment-reader.ts: stored digest, header and `prev`, bodies, times, trailer),
 * one segment's records at a time. A damaged segment, or a chain broken before the end of the
 * window, is a SourceRefusedError naming the segment, as for `--at`.
 */
import { CrdBackupError, SourceRefusedError } from "../errors.ts";
import type { Chain } from "../journal/chains.ts";
import { Readable } from "node:stream";
import { identitiesFor } from "../crypto/keyring.ts";
import { mayHold, parseKeyIndex } from "../journal/key-index.ts";
import type { JournalRecord, SegmentTrailer } from "../journal/segment-format.ts";
import { readStoredSegment } from "../journal/segment-io.ts";
import {
  checkStoredDigest,
  readIndexedRecords,
  readSegment,
  readSegmentHeader,
  type BodyOptions,
} from "../journal/segment-reader.ts";
import { RecordIndexBuilder, recordsOf, type RecordIndexes } from "../journal/record-index.ts";
import { checkSignature, trustedSignersFor } from "../signing/stored.ts";
import { readAll } from "../storage/backend.ts";
import { segmentKey } from "../journal/segment-key.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { VerifiedSnapshot } from "../source/verified.ts";
import type { ArchiveEntry } from "../archive/reader.ts";

export interface ReadRecord {
  record: JournalRecord;
  /** The segment's key: where the record came from. */
  segment: string;
}

/**
 * The records of the chain's segments that start before `until`, in order (every record of each).
 * With `wanted` (key-index members, key-index.ts), a segment whose index shows it holds none of
 * them is skipped after its stored bytes are hashed, its signature judged and its header checked; a segment without an
 * index (written before it, or too large for one) is read in full. `shareBodies`: see BodyOptions.
 * With `indexes` too (a long-running reader's, record-index.ts), a segment read in full is indexed
 * by record, and one already indexed is hashed whole but parsed only at the wanted records.
 * `first` and `end` read only
 * the segments from index `first` (linked to the one before it by the listing's hash) to before
 * index `end`, of those that start before `until`.
 */
export async function* chainRecords(
  storage: StorageBackend,
  chain: Chain,
  until: Date,
  signal?: AbortSignal,
  options: {
    wanted?: readonly string[];
    first?: number;
    end?: number;
    indexes?: RecordIndexes | undefined;
  } & BodyOptions = {},
): AsyncGenerator<ReadRecord> {
  const { wanted, first = 0, indexes } = options;
  const readable = beforeBreak(chain);
  const segments = readable.filter((s) => s.from < until);
  const i = readable.length;
  // a window reaching past the break is refused, as --at past it is
  if (
    chain.broken &&
    i < chain.segments.length &&
    chain.segments[i]!.from < until &&
    (i === 0 || until > chain.segments[i - 1]!.to)
  )
    throw new SourceRefusedError(
      { segment: chain.broken.key },
      `journal segment ${chain.broken.key}: ${chain.broken.message}`,
      { key: chain.broken.key },
    );
  let prev: string | null = segments[first - 1]?.sha256 ?? null;
  for (const seg of segments.slice(first, options.end)) {
    signal?.throwIfAborted();
    const key = segmentKey(seg);
    try {
      let records: AsyncGenerator<JournalRecord, SegmentTrailer>;
      let built: RecordIndexBuilder | undefined;
      if (wanted) {
        const indexed = indexes?.get(key, prev);
        const offsets = indexed && recordsOf(indexed, wanted);
        const signed = seg.signed || trustedSignersFor(storage) !== undefined;
        if (offsets?.length === 0 && !signed) {
          // nothing wanted in it: its stored bytes hashed as they stream, never held
          await checkStoredDigest(await storage.read(key, { signal }), seg);
          prev = seg.sha256;
          continue;
        }
        const bytes = await readAll(await storage.read(key, { signal }));
        // judged as readStoredSegment judges it, over the same stored bytes
        if (signed) await checkSignature(storage, key, bytes, { segment: key }, `journal segment ${key}`);
        const expected = { ...seg, prev };
        if (offsets) {
          const ids = identitiesFor(storage);
          for await (const record of readIndexedRecords(bytes, seg, indexed!, offsets, ids, options))
            yield { record, segment: key };
          prev = seg.sha256;
          continue;
        }
        const bits = parseKeyIndex((await readSegmentHeader(bytes, expected, identitiesFor(storage))).keys);
        if (bits && !mayHold(bits, wanted)) {
          prev = seg.sha256;
          continue;
        }
        built = indexes && !indexes.full ? new RecordIndexBuilder() : undefined;
        records = readSegment(Readable.from([bytes]), expected, identitiesFor(storage), {
          ...options,
          ...(built && { index: built }),
        });
      } else records = await readStoredSegment(storage, seg, prev, signal, options);
      for await (const record of records) yield { record, segment: key };
      // read to its end: every check passed
      if (built) indexes!.set(key, built.finish(prev));
    } catch (e) {
      if (!(e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID")) throw e;
      const message = e.message.startsWith("journal segment ")
        ? e.message
        : `journal segment ${key}: ${e.message}`;
      throw new SourceRefusedError({ segment: key }, message, { key }, { cause: e });
    }
    prev = seg.sha256;
  }
}

/**
 * Indexes by record (record-index.ts) every segment of the chain not indexed yet, one at a time,
 * each read in full and checked as stored (readStoredSegment: signature, digest, every line), so a
 * later look at any object parses only its own records. Stops at a segment that fails its checks
 * (a request reading it is refused then, with the reason), at a broken link, or when the budget is
 * full. Returns the segments indexed.
 */
export async function indexChain(
  storage: StorageBackend,
  chain: Chain,
  indexes: RecordIndexes,
  signal?: AbortSignal,
): Promise<number> {
  let prev: string | null = null;
  let done = 0;
  for (const seg of beforeBreak(chain)) {
    const key = segmentKey(seg);
    if (!indexes.get(key, prev)) {
      if (indexes.full) break;
      const built = new RecordIndexBuilder();
      try {
        const records = await readStoredSegment(storage, seg, prev, signal, {
          shareBodies: true,
          index: built,
        });
        for await (const _ of records);
      } catch (e) {
        if (signal?.aborted) throw e;
        break;
      }
      indexes.set(key, built.finish(prev));
      done++;
    }
    prev = seg.sha256;
  }
  return done;
}

/** The chain's segments up to its break (all of them when it is whole): the ones readers may read. */
function beforeBreak(chain: Chain): Chain["segments"] {
  if (!chain.broken) return chain.segments;
  const i = chain.segments.findIndex((s) => segmentKey(s) === chain.broken!.key);
  return i < 0 ? chain.segments : chain.segments.slice(0, i);
}

/** The index of the first segment (of those chainRecords reads before `until`) that ends after `t`. */
export function firstSegmentAfter(chain: Chain, t: Date): number {
  const i = chain.segments.findIndex((s) => s.to > t);
  return i < 0 ? chain.segments.length : i;
}

/** A snapshot's entries read once from storage, checked as they stream (read them to the end). */
export function streamSnapshot(
  storage: StorageBackend,
  id: string,
  signal?: AbortSignal,
): AsyncGenerator<ArchiveEntry> {
  return VerifiedSnapshot.stream(storage, id, signal);
}

/** A snapshot, fetched and verified whole (memory bounded: it goes to a temp file). */
export function fetchSnapshot(
  storage: StorageBackend,
  id: string,
  signal?: AbortSignal,
): Promise<VerifiedSnapshot> {
  return VerifiedSnapshot.fetch(storage, id, signal);
}
