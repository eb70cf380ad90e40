/**
 * The journal segment format (docs/format.md, "Journal format", "Segment bytes"): its records,
 * header and trailer, its limits, and the checks a reader applies to each line (segment-reader.ts
 * reads, segment-writer.ts writes). Bodies are framed by size after their record line, never
 * embedded in JSON, so they stay byte for byte what the API server sent (int64 values included).
 */
import { CrdBackupError } from "../errors.ts";
import type { SegmentKey } from "./segment-key.ts";

export const JOURNAL_FORMAT = "crd-backup-journal";
export const JOURNAL_FORMAT_VERSION = 1;
/** A recorder closes a segment before its uncompressed bytes pass this. */
export const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

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

/**
 * A put, delete or resync record before the recorder's chain writer gives it its time `t`
 * (src/journal/record/chain-writer.ts): so no record without a time can reach a segment.
 */
export type PendingRecord = Omit<PutRecord, "t"> | Omit<DeleteRecord, "t"> | Omit<ResyncRecord, "t">;

/** A segment's key index (key-index.ts builds and reads it). */
export interface KeyIndex {
  /** The Bloom filter's bits, base64. */
  bloom: string;
  /** Hash functions. */
  k: number;
  /** Distinct members added. */
  n: number;
}

export interface SegmentHeader {
  format: typeof JOURNAL_FORMAT;
  formatVersion: number;
  cluster: string;
  base: string;
  seq: number;
  prev: string | null;
  from: string;
  to: string;
  /** The key index (key-index.ts); absent in segments written before it, and in very large ones. */
  keys?: KeyIndex;
}

export interface SegmentTrailer {
  op: "end";
  records: number;
  /** Per watched resource, the last resourceVersion seen when the segment was closed. */
  rvs: Record<string, string>;
  /**
   * Where each gzip member starts: [offset in the gzip bytes, offset in the uncompressed bytes],
   * ascending from [0, 0] (segment-writer.ts, FRAME_BYTES); absent when the segment is one member.
   */
  frames?: [number, number][];
}

/** A record's object, as messages name it. */
export function describe(r: RecordKey): string {
  if (r.kind !== "object") return `${r.kind === "crd" ? "CRD" : "Namespace"} ${r.name}`;
  return `${r.plural}.${r.group}/${r.version} ${r.namespace ? `${r.namespace}/` : ""}${r.name}`;
}

/** The error of a segment that fails a check. */
export function invalid(key: string, message: string): CrdBackupError {
  return new CrdBackupError("ARCHIVE_INVALID", `journal segment ${key}: ${message}`, { key });
}

/** The checks a reader applies to each line: a JSON object, then a header, record or trailer. */
export function parseLine(line: Buffer, key: string): Record<string, unknown> {
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

export function checkHeader(
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

export function checkTrailer(v: Record<string, unknown>, key: string): SegmentTrailer {
  const rvs = v["rvs"];
  if (!Number.isInteger(v["records"]) || typeof rvs !== "object" || rvs === null || Array.isArray(rvs)) {
    throw invalid(key, "malformed trailer");
  }
  for (const rv of Object.values(rvs))
    if (typeof rv !== "string") throw invalid(key, "malformed trailer rvs");
  if (v["frames"] !== undefined && !framesOk(v["frames"])) throw invalid(key, "malformed trailer frames");
  return v as unknown as SegmentTrailer;
}

/** Pairs of offsets, from [0, 0], each strictly after the one before in both. */
function framesOk(frames: unknown): boolean {
  if (!Array.isArray(frames) || frames.length === 0) return false;
  let prev: [number, number] = [-1, -1];
  for (const f of frames as unknown[]) {
    if (!Array.isArray(f) || f.length !== 2 || !f.every((n) => Number.isSafeInteger(n))) return false;
    const [c, u] = f as [number, number];
    if (prev[0] < 0 ? c !== 0 || u !== 0 : c <= prev[0] || u <= prev[1]) return false;
    prev = [c, u];
  }
  return true;
}

const EMPTY = Buffer.alloc(0);

const str = (v: unknown): v is string => typeof v === "string" && v.length > 0;

export function checkRecord(v: Record<string, unknown>, key: string): JournalRecord {
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
      // the parsed line becomes the record (no copy: a copy per record was a tenth of reading a segment)
      v["body"] = EMPTY;
      return v as unknown as PutRecord;
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
