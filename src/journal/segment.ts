/**
 * The bytes of a journal segment (docs/format.md, "Journal format", "Segment bytes"): writing one
 * from records, and reading records back with every check the format names. Bodies are framed by
 * size after their record line, never embedded in JSON, so they stay byte for byte what the API
 * server sent (int64 values included).
 */
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { Identities, Recipients } from "../crypto/keys.ts";
import { decryptStream, encryptStream } from "../crypto/stream.ts";
import { readAll } from "../storage/backend.ts";
import { CrdBackupError } from "../errors.ts";
import { segmentKey, type SegmentKey } from "./segment-key.ts";

export const JOURNAL_FORMAT = "crd-backup-journal";
export const JOURNAL_FORMAT_VERSION = 1;
/** A recorder closes a segment before its uncompressed bytes pass this. */
export const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** A record line (everything but the body) is small; a longer one is not a segment. */
const MAX_LINE_BYTES = 64 * 1024;

export type RecordKind = "crd" | "namespace" | "object";

/** Which object a put or delete is about. CRDs and Namespaces have a name only. */
export interface RecordKey {
  kind: RecordKind;
  group?: string;
  version?: string;
  plural?: string;
  namespace?: string;
  name: string;
}

export interface PutRecord extends RecordKey {
  t: string;
  op: "put";
  uid: string;
  rv: string;
  body: Buffer;
}

export interface DeleteRecord extends RecordKey {
  t: string;
  op: "delete";
  uid: string;
  rv: string;
}

export interface ResyncRecord {
  t: string;
  op: "resync";
  phase: "begin" | "end";
  kind: RecordKind;
  group?: string;
  version?: string;
  plural?: string;
  rv: string;
}

export interface GapRecord {
  t: string;
  op: "gap";
  from: string;
  to: string;
  reason: string;
  /** `plural.group` names, "crds", "namespaces", or ["*"]. */
  resources: string[];
}

export type JournalRecord = PutRecord | DeleteRecord | ResyncRecord | GapRecord;

export interface SegmentHeader {
  format: typeof JOURNAL_FORMAT;
  formatVersion: number;
  cluster: string;
  base: string;
  seq: number;
  prev: string | null;
  from: string;
  to: string;
}

export interface SegmentTrailer {
  op: "end";
  records: number;
  /** Per watched resource, the last resourceVersion seen when the segment was closed. */
  rvs: Record<string, string>;
}

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
    const trailer: SegmentTrailer = { op: "end", records: this.count, rvs };
    const plain = Buffer.concat([
      Buffer.from(`${JSON.stringify(header)}\n`),
      ...this.parts,
      Buffer.from(`${JSON.stringify(trailer)}\n`),
    ]);
    const gz = await promisify(zlib.gzip)(plain, { level: 1 });
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
    return { key: segmentKey(meta), bytes, sha256, meta, plainSize: plain.length };
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }
}

const NEWLINE = Buffer.from("\n");

export function describe(r: RecordKey): string {
  if (r.kind !== "object") return `${r.kind === "crd" ? "CRD" : "Namespace"} ${r.name}`;
  return `${r.plural}.${r.group}/${r.version} ${r.namespace ? `${r.namespace}/` : ""}${r.name}`;
}

function invalid(key: string, message: string): CrdBackupError {
  return new CrdBackupError("ARCHIVE_INVALID", `journal segment ${key}: ${message}`, { key });
}

/**
 * Reads a stored segment, checking everything docs/format.md lists for step 4 of a replay: the
 * stored bytes' SHA-256 and the key, the header against the key and `prev`, each body's SHA-256,
 * record times within the window and in order, the trailer's count. Records are yielded as they
 * are read, so a consumer MUST discard what it gathered if the generator throws; the trailer is
 * returned last.
 */
export async function* readSegment(
  stored: Readable,
  expected: SegmentKey & { prev: string | null },
  keys?: Identities,
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
  const gunzip = zlib.createGunzip();
  plain.on("error", (e) => gunzip.destroy(e));
  plain.pipe(gunzip);

  const reader = new LineReader(gunzip, key);
  const from = expected.from.getTime();
  const to = expected.to.getTime();
  let header: SegmentHeader | undefined;
  let trailer: SegmentTrailer | undefined;
  let count = 0;
  let lastT = from;
  let sawGap = false;
  try {
    for (;;) {
      const line = await reader.line();
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
        const body = await reader.bytes(size);
        if ((await reader.bytes(1))[0] !== 0x0a)
          throw invalid(key, `${describe(record)}: body not followed by a newline`);
        if (createHash("sha256").update(body).digest("hex") !== value["sha256"]) {
          throw invalid(key, `${describe(record)}: body SHA-256 does not match its record`);
        }
        record.body = body;
      }
      if (record.op === "gap") sawGap = true;
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
  return trailer;
}

function parseLine(line: Buffer, key: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line.toString("utf8"));
  } catch {
    throw invalid(key, "a record line is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid(key, "a record line is not a JSON object");
  return value as Record<string, unknown>;
}

function checkHeader(
  v: Record<string, unknown>,
  expected: SegmentKey & { prev: string | null },
  key: string,
): SegmentHeader {
  if (v["format"] !== JOURNAL_FORMAT) throw invalid(key, "not a crd-backup journal segment");
  if (v["formatVersion"] !== JOURNAL_FORMAT_VERSION) {
    throw invalid(
      key,
      `journal format version ${String(v["formatVersion"])} is not one this crd-backup understands (${JOURNAL_FORMAT_VERSION}); upgrade crd-backup`,
    );
  }
  const want: Record<string, unknown> = {
    cluster: expected.cluster,
    base: expected.base,
    seq: expected.seq,
    prev: expected.prev,
    from: expected.from.toISOString(),
    to: expected.to.toISOString(),
  };
  for (const [field, value] of Object.entries(want)) {
    if (v[field] !== value) {
      throw invalid(
        key,
        field === "prev"
          ? "its header's previous-segment hash does not match the chain (a segment is missing, reordered or altered)"
          : `its header's ${field} ${JSON.stringify(v[field])} does not match ${JSON.stringify(value)}`,
      );
    }
  }
  return v as unknown as SegmentHeader;
}

function checkTrailer(v: Record<string, unknown>, key: string): SegmentTrailer {
  const rvs = v["rvs"];
  if (!Number.isInteger(v["records"]) || typeof rvs !== "object" || rvs === null || Array.isArray(rvs)) {
    throw invalid(key, "malformed trailer");
  }
  for (const rv of Object.values(rvs))
    if (typeof rv !== "string") throw invalid(key, "malformed trailer rvs");
  return v as unknown as SegmentTrailer;
}

const str = (v: unknown): v is string => typeof v === "string" && v.length > 0;

function checkRecord(v: Record<string, unknown>, key: string): JournalRecord {
  if (!str(v["t"]) || Number.isNaN(Date.parse(v["t"]))) throw invalid(key, "a record has no valid time");
  const kind = v["kind"];
  const keyOk = () => {
    if (kind !== "crd" && kind !== "namespace" && kind !== "object") return false;
    if (!str(v["name"])) return false;
    if (kind === "object") return str(v["group"]) && str(v["version"]) && str(v["plural"]);
    return true;
  };
  switch (v["op"]) {
    case "put":
      if (!keyOk() || !str(v["uid"]) || !str(v["rv"]) || !str(v["sha256"]))
        throw invalid(key, "malformed put record");
      if (
        !Number.isInteger(v["size"]) ||
        (v["size"] as number) < 0 ||
        (v["size"] as number) > MAX_BODY_BYTES
      ) {
        throw invalid(key, "a put record's size is out of range");
      }
      return { ...(v as object), body: Buffer.alloc(0) } as PutRecord;
    case "delete":
      if (!keyOk() || !str(v["uid"]) || !str(v["rv"])) throw invalid(key, "malformed delete record");
      return v as unknown as DeleteRecord;
    case "resync":
      if ((v["phase"] !== "begin" && v["phase"] !== "end") || typeof v["rv"] !== "string")
        throw invalid(key, "malformed resync record");
      if (kind !== "crd" && kind !== "namespace" && kind !== "object")
        throw invalid(key, "malformed resync record");
      if (kind === "object" && !(str(v["group"]) && str(v["version"]) && str(v["plural"])))
        throw invalid(key, "malformed resync record");
      return v as unknown as ResyncRecord;
    case "gap":
      if (
        !str(v["from"]) ||
        !str(v["to"]) ||
        typeof v["reason"] !== "string" ||
        !Array.isArray(v["resources"])
      ) {
        throw invalid(key, "malformed gap record");
      }
      return v as unknown as GapRecord;
    default:
      throw invalid(key, `unknown record op ${JSON.stringify(v["op"])}`);
  }
}

/** Lines and exact byte counts from a stream, holding at most one body plus one chunk. */
class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private total = 0;
  private readonly it: AsyncIterator<Buffer>;

  private readonly key: string;

  constructor(stream: Readable, key: string) {
    this.key = key;
    this.it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.it.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.total += next.value.length;
    if (this.total > MAX_SEGMENT_BYTES + MAX_BODY_BYTES)
      throw invalid(this.key, "larger than a segment may be");
    this.buf = this.buf.length ? Buffer.concat([this.buf, next.value]) : next.value;
    return true;
  }

  async line(): Promise<Buffer | undefined> {
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, start);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl);
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      start = this.buf.length;
      if (this.buf.length > MAX_LINE_BYTES) throw invalid(this.key, "a record line is too long");
      if (!(await this.more())) {
        if (this.buf.length) throw invalid(this.key, "truncated: the last line has no newline");
        return undefined;
      }
    }
  }

  async bytes(n: number): Promise<Buffer> {
    // gather a large body's chunks and join them once, not once per chunk
    const parts: Buffer[] = [];
    let have = 0;
    while (have + this.buf.length < n) {
      parts.push(this.buf);
      have += this.buf.length;
      this.buf = Buffer.alloc(0);
      if (!(await this.more())) throw invalid(this.key, "truncated inside a body");
    }
    parts.push(this.buf.subarray(0, n - have));
    this.buf = this.buf.subarray(n - have);
    return Buffer.concat(parts, n);
  }
}
