/**
 * Where each record of a verified segment starts in its decompressed bytes, by the key-index member
 * it concerns (key-index.ts): kept in memory by a long-running reader (the web view) so a second
 * look for any object seeks to that object's lines instead of parsing the whole segment. Nothing of
 * this is stored: it is built while a segment is read in full and passes every check, and it is
 * used only for the same stored bytes (the segment's key names their SHA-256, which the reader
 * hashes again on every read) following the same previous segment.
 *
 * Member hashes are 32 bits: a collision makes a reader parse a record it did not need (readers
 * check each record's key), never miss one.
 */
import { createHash } from "node:crypto";
import { indexMember } from "./key-index.ts";
import type { JournalRecord, SegmentTrailer } from "./segment-format.ts";

/** One segment's records: a member hash and a line offset each, in the segment's order. */
export interface RecordIndex {
  /** The previous segment's SHA-256 the segment was verified after. */
  prev: string | null;
  hashes: Uint32Array;
  offsets: Uint32Array;
  /** The trailer's `frames` (gzip members): compressed and uncompressed starts; absent: one member. */
  frames?: { gz: Uint32Array; plain: Uint32Array };
}

/** A record to read: where its line starts and the member hash it was indexed under. */
export interface IndexedRecord {
  offset: number;
  hash: number;
}

/** The first 32 bits of the member's SHA-256. */
export function memberHash(member: string): number {
  return createHash("sha256").update(member).digest().readUInt32BE(0);
}

/** Gathers a segment's index while readSegment reads it (committed only once it has passed). */
export class RecordIndexBuilder {
  private hashes: number[] = [];
  private offsets: number[] = [];

  add(record: JournalRecord, offset: number): void {
    const member = indexMember(record);
    if (member === undefined) return; // a gap: readers find gaps from keys
    this.hashes.push(memberHash(member));
    this.offsets.push(offset);
  }

  private frames: [number, number][] | undefined;

  /** The trailer, once the segment has passed every check. */
  end(trailer: SegmentTrailer): void {
    this.frames = trailer.frames;
  }

  finish(prev: string | null): RecordIndex {
    const index: RecordIndex = {
      prev,
      hashes: Uint32Array.from(this.hashes),
      offsets: Uint32Array.from(this.offsets),
    };
    if (this.frames)
      index.frames = {
        gz: Uint32Array.from(this.frames, (f) => f[0]),
        plain: Uint32Array.from(this.frames, (f) => f[1]),
      };
    return index;
  }
}

/** The records, in order, that may concern any of `members`. */
export function recordsOf(index: RecordIndex, members: readonly string[]): IndexedRecord[] {
  const wanted = members.map(memberHash);
  const out: IndexedRecord[] = [];
  for (let i = 0; i < index.hashes.length; i++)
    if (wanted.includes(index.hashes[i]!)) out.push({ offset: index.offsets[i]!, hash: index.hashes[i]! });
  return out;
}

/** The frame (gzip member) holding uncompressed offset `offset`: its index in `frames`. */
export function frameOf(frames: { plain: Uint32Array }, offset: number): number {
  let lo = 0;
  let hi = frames.plain.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (frames.plain[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The indexes of the segments read so far, by segment key, within a memory budget: 8 bytes a
 * record, so the default 64 MiB holds 8 million records (a journal of 1,000,000 events takes 8 MiB).
 * Past the budget new segments are not indexed and are read in full, as without an index.
 */
export class RecordIndexes {
  private readonly byKey = new Map<string, RecordIndex>();
  private bytes = 0;
  readonly budget: number;

  constructor(budget = 64 * 2 ** 20) {
    this.budget = budget;
  }

  /** The segment's index, if it was verified after the same previous segment. */
  get(key: string, prev: string | null): RecordIndex | undefined {
    const index = this.byKey.get(key);
    return index && index.prev === prev ? index : undefined;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  get full(): boolean {
    return this.bytes >= this.budget;
  }

  set(key: string, index: RecordIndex): void {
    const size = sizeOf(index);
    const old = this.byKey.get(key);
    if (old) this.bytes -= sizeOf(old);
    else if (this.bytes + size > this.budget) return;
    this.byKey.set(key, index);
    this.bytes += size;
  }
}

function sizeOf(index: RecordIndex): number {
  const frames = index.frames ? index.frames.gz.byteLength * 2 : 0;
  return index.hashes.byteLength + index.offsets.byteLength + frames;
}
