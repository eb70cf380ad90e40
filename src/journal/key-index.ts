/**
 * A segment's key index (docs/format.md, "Segment bytes", header field `keys`): a Bloom filter of
 * the objects the segment puts or deletes and the resources it re-lists, so a reader after one
 * object (`history`) reads in full only the segments that may hold it. The index sits in the
 * header, which the stored bytes' SHA-256 (named by the key) covers: a reader that skips a segment
 * still hashes all of it, so an altered index is refused like any altered segment.
 *
 * Members: `o/<group>/<plural>/<namespace>/<name>` (namespace empty when cluster-scoped),
 * `c/<name>` (a CRD), `n/<name>` (a Namespace), `r/<plural>.<group>`, `r/crds`, `r/namespaces`
 * (a resync of that resource). Hashes: the first two big-endian 32-bit words h1, h2 of the
 * member's SHA-256; bit i of k is (h1 + i * (h2 | 1)) mod m, m = 8 * bytes, bit b at byte b >> 3,
 * mask 1 << (b & 7).
 */
import { createHash } from "node:crypto";
import type { JournalRecord, KeyIndex } from "./segment-format.ts";

/** ~1% false positives at 10 bits a member and 7 hashes. */
const BITS_PER_MEMBER = 10;
const HASHES = 7;
/**
 * The largest filter written: 40 KiB is 54.6 KiB of base64, so a header stays within the 64 KiB
 * a reader allows a line (about 32,000 distinct members; a segment with more has no index and is
 * read in full, as a segment written before the index was).
 */
export const MAX_INDEX_BYTES = 40 * 1024;

/** What a record adds to the index (nothing for a gap: gaps are found from `.gap` keys). */
export function indexMember(r: JournalRecord): string | undefined {
  if (r.op === "gap") return undefined;
  if (r.op === "resync")
    return r.kind === "crd" ? "r/crds" : r.kind === "namespace" ? "r/namespaces" : `r/${r.plural}.${r.group}`;
  if (r.kind === "crd") return `c/${r.name}`;
  if (r.kind === "namespace") return `n/${r.name}`;
  return objectMember(r.group!, r.plural!, r.namespace, r.name);
}

export function objectMember(
  group: string,
  plural: string,
  namespace: string | undefined,
  name: string,
): string {
  return `o/${group}/${plural}/${namespace ?? ""}/${name}`;
}

export function resyncMember(group: string, plural: string): string {
  return `r/${plural}.${group}`;
}

function positions(member: string, m: number, k: number): number[] {
  const d = createHash("sha256").update(member).digest();
  const h1 = d.readUInt32BE(0);
  const h2 = (d.readUInt32BE(4) | 1) >>> 0; // unsigned: `|` gives a signed 32-bit value
  const out: number[] = [];
  for (let i = 0; i < k; i++) out.push((h1 + i * h2) % m);
  return out;
}

/** The index of these members, or undefined when there are too many for a header. */
export function buildKeyIndex(members: ReadonlySet<string>): KeyIndex | undefined {
  const bytes = Math.max(8, Math.ceil((members.size * BITS_PER_MEMBER) / 8));
  if (bytes > MAX_INDEX_BYTES) return undefined;
  const bits = Buffer.alloc(bytes);
  for (const member of members)
    for (const b of positions(member, bytes * 8, HASHES)) bits[b >> 3]! |= 1 << (b & 7);
  return { bloom: bits.toString("base64"), k: HASHES, n: members.size };
}

/** A checked index from a header's `keys` field; undefined when absent or malformed (read the segment). */
export function parseKeyIndex(value: unknown): Buffer | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { bloom, k } = value as Record<string, unknown>;
  if (typeof bloom !== "string" || k !== HASHES) return undefined;
  const bits = Buffer.from(bloom, "base64");
  return bits.length > 0 ? bits : undefined;
}

/** Whether the segment may hold any of `members` (false: it certainly holds none). */
export function mayHold(bits: Buffer, members: readonly string[]): boolean {
  const m = bits.length * 8;
  return members.some((member) =>
    positions(member, m, HASHES).every((b) => (bits[b >> 3]! & (1 << (b & 7))) !== 0),
  );
}
