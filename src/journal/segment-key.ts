/**
 * Journal segment keys (docs/format.md, "Journal format", "Keys"): a listing alone shows each
 * chain's window, its order and its gaps.
 */
import { isSnapshotId } from "../archive/format.ts";

export const JOURNAL_PREFIX = "journal/";

export interface SegmentKey {
  /** The cluster's kube-system uid. */
  cluster: string;
  /** The snapshot ID of the chain's base. */
  base: string;
  seq: number;
  from: Date;
  to: Date;
  /** SHA-256 of the stored bytes. */
  sha256: string;
  /** The segment holds a gap record. */
  gap: boolean;
  /** The stored bytes are an age file of the segment (docs/format.md, "Encryption"). */
  encrypted?: boolean;
  /** A listing showed `<key>.sig` beside it (undefined: not known, a reader that requires signatures looks). */
  signed?: boolean;
}

const FILE =
  /^([0-9]{8})-([0-9]{8}T[0-9]{6}\.[0-9]{3}Z)-([0-9]{8}T[0-9]{6}\.[0-9]{3}Z)-([0-9a-f]{64})(\.gap)?\.jsonl\.gz(\.age)?$/;
const CLUSTER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const MAX_SEQ = 99_999_999;

/** `20261203T052005.000Z`, the time form of segment keys. */
export function compactTime(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "");
}

function parseCompactTime(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/.exec(s);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
  return Number.isNaN(d.getTime()) || compactTime(d) !== s ? undefined : d;
}

export function clusterPrefix(cluster: string): string {
  return `${JOURNAL_PREFIX}${cluster}/`;
}

export function chainPrefix(cluster: string, base: string): string {
  return `${clusterPrefix(cluster)}${base}/`;
}

export function segmentKey(k: SegmentKey): string {
  const seq = String(k.seq).padStart(8, "0");
  const file = `${seq}-${compactTime(k.from)}-${compactTime(k.to)}-${k.sha256}${k.gap ? ".gap" : ""}.jsonl.gz${k.encrypted ? ".age" : ""}`;
  return `${chainPrefix(k.cluster, k.base)}${file}`;
}

/** The segment a key names, or undefined for any other key (readers ignore those). */
export function parseSegmentKey(key: string): SegmentKey | undefined {
  const parts = key.split("/");
  if (parts.length !== 4 || `${parts[0]}/` !== JOURNAL_PREFIX) return undefined;
  const [, cluster, base, file] = parts as [string, string, string, string];
  if (!CLUSTER.test(cluster) || !isSnapshotId(base)) return undefined;
  const m = FILE.exec(file);
  if (!m) return undefined;
  const from = parseCompactTime(m[2]!);
  const to = parseCompactTime(m[3]!);
  const seq = Number(m[1]);
  if (!from || !to || seq < 1 || to.getTime() < from.getTime()) return undefined;
  const seg: SegmentKey = { cluster, base, seq, from, to, sha256: m[4]!, gap: m[5] !== undefined };
  if (m[6]) seg.encrypted = true;
  return seg;
}
