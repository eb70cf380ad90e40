/**
 * Writing a journal segment (docs/format.md, "Journal format", "Segment bytes"): records collected
 * in arrival order, framed as segment-format.ts describes, then gzip and, when asked, age.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { Recipients } from "../crypto/keys.ts";
import { encryptStream } from "../crypto/stream.ts";
import { readAll } from "../storage/backend.ts";
import { CrdBackupError } from "../errors.ts";
import { buildKeyIndex, indexMember } from "./key-index.ts";
import { segmentKey, type SegmentKey } from "./segment-key.ts";
import {
  JOURNAL_FORMAT,
  JOURNAL_FORMAT_VERSION,
  MAX_BODY_BYTES,
  describe,
  type JournalRecord,
  type RecordKey,
  type SegmentHeader,
  type SegmentTrailer,
} from "./segment-format.ts";

/** Where a segment sits in its chain: what its header must say. */
export interface SegmentPlace {
  cluster: string;
  base: string;
  seq: number;
  prev: string | null;
  from: Date;
  to: Date;
}

export interface EncodedSegment {
  key: string;
  /** The gzip bytes to store. */
  bytes: Buffer;
  sha256: string;
  meta: SegmentKey;
  /** Uncompressed size. */
  plainSize: number;
}

const KEY_FIELDS = ["kind", "group", "version", "plural", "namespace", "name"] as const;

function keyFields(r: RecordKey): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of KEY_FIELDS) if (r[f] !== undefined) out[f] = r[f];
  return out;
}

/** The record's line, without the body (field order fixed, so equal records give equal bytes). */
export function recordLine(r: JournalRecord): string {
  switch (r.op) {
    case "put": {
      const sha256 = createHash("sha256").update(r.body).digest("hex");
      return JSON.stringify({
        t: r.t,
        op: r.op,
        ...keyFields(r),
        uid: r.uid,
        rv: r.rv,
        size: r.body.length,
        sha256,
      });
    }
    case "delete":
      return JSON.stringify({ t: r.t, op: r.op, ...keyFields(r), uid: r.uid, rv: r.rv });
    case "resync": {
      const { t, op, phase, kind, group, version, plural, rv } = r;
      return JSON.stringify({ t, op, phase, kind, group, version, plural, rv });
    }
    case "gap":
      return JSON.stringify({
        t: r.t,
        op: r.op,
        from: r.from,
        to: r.to,
        reason: r.reason,
        resources: r.resources,
      });
  }
}

/**
 * Collects records for one segment, in arrival order, and encodes them. The recorder flushes on
 * its interval or once `plainSize` nears MAX_SEGMENT_BYTES, so memory holds one segment at most.
 */
export class SegmentBuilder {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private count = 0;
  private hasGap = false;
  /** The index's members: one string per distinct object, bounded like the segment. */
  private readonly members = new Set<string>();

  get records(): number {
    return this.count;
  }

  /** Uncompressed bytes so far, header and trailer excluded. */
  get plainSize(): number {
    return this.size;
  }

  add(record: JournalRecord): void {
    const line = Buffer.from(`${recordLine(record)}\n`);
    this.push(line);
    if (record.op === "put") {
      if (record.body.length > MAX_BODY_BYTES) {
        throw new CrdBackupError(
          "USAGE",
          `journal: ${describe(record)} is larger than ${MAX_BODY_BYTES} bytes`,
        );
      }
      this.push(record.body);
      this.push(NEWLINE);
    }
    if (record.op === "gap") this.hasGap = true;
    const member = indexMember(record);
    if (member !== undefined) this.members.add(member);
    this.count++;
  }

  /** The segment's stored bytes: gzip, then age to `to` when given (the key then ends `.age`). */
  async encode(place: SegmentPlace, rvs: Record<string, string>, to?: Recipients): Promise<EncodedSegment> {
    const header: SegmentHeader = {
      format: JOURNAL_FORMAT,
      formatVersion: JOURNAL_FORMAT_VERSION,
      cluster: place.cluster,
      base: place.base,
      seq: place.seq,
      prev: place.prev,
      from: place.from.toISOString(),
      to: place.to.toISOString(),
    };
    const keys = buildKeyIndex(this.members);
    if (keys) header.keys = keys;
    const lines = Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), ...this.parts]);
    const { members, frames, last } = await gzipFrames(lines);
    const trailer: SegmentTrailer = { op: "end", records: this.count, rvs };
    if (frames.length > 1) trailer.frames = frames;
    const end = Buffer.from(`${JSON.stringify(trailer)}\n`);
    members.push(await gzip(Buffer.concat([lines.subarray(last), end]), { level: 1 }));
    const gz = Buffer.concat(members);
    const bytes = to ? await readAll(await encryptStream(Readable.from([gz]), to)) : gz;
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const meta: SegmentKey = {
      cluster: place.cluster,
      base: place.base,
      seq: place.seq,
      from: place.from,
      to: place.to,
      sha256,
      gap: this.hasGap,
    };
    if (to) meta.encrypted = true;
    return { key: segmentKey(meta), bytes, sha256, meta, plainSize: lines.length + end.length };
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }
}

const NEWLINE = Buffer.from("\n");

const gzip = promisify(zlib.gzip);

/**
 * Uncompressed bytes a gzip member holds (the last one may hold up to twice that, and the trailer):
 * a reader seeking to a record inflates one member of 256 KiB instead of, on average, half the
 * segment (8 MiB of a full one). The 32 KiB window restarting at each member costs about 1% of the
 * compressed size.
 */
export const FRAME_BYTES = 256 * 1024;

/**
 * The gzip members of every frame of `lines` but the last, and the frames' [compressed offset,
 * uncompressed offset] pairs, the last frame's included (it starts at `last`; the caller adds the
 * trailer to it and compresses it).
 */
async function gzipFrames(
  lines: Buffer,
): Promise<{ members: Buffer[]; frames: [number, number][]; last: number }> {
  const members: Buffer[] = [];
  const frames: [number, number][] = [];
  let c = 0;
  let u = 0;
  for (; u + 2 * FRAME_BYTES <= lines.length; u += FRAME_BYTES) {
    frames.push([c, u]);
    const member = await gzip(lines.subarray(u, u + FRAME_BYTES), { level: 1 });
    members.push(member);
    c += member.length;
  }
  frames.push([c, u]);
  return { members, frames, last: u };
}
