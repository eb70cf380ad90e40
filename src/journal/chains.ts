/**
 * Journal chains and their recoverable windows (docs/format.md, "Journal format", "Replay" steps
 * 1-2), from a listing: segment keys carry each segment's window, order and gap flag, so only the
 * `.gap` segments are read (for their gap records). A window is where `restore --at` can land.
 */
import { inTheFuture } from "../archive/format.ts";
import type { StoredManifest } from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { listSnapshots } from "../storage/snapshots.ts";
import { identitiesFor } from "../crypto/keyring.ts";
import { signatureKey } from "../signing/stored.ts";
import { readStoredSegment } from "./segment-io.ts";
import { JOURNAL_PREFIX, parseSegmentKey, segmentKey, type SegmentKey } from "./segment-key.ts";

export interface Gap {
  from: Date;
  to: Date;
  reason: string;
  resources: string[];
  /** The segment holding the gap record; "" for time no segment covers (see chainWindows). */
  segment: string;
}

export interface Window {
  from: Date;
  to: Date;
}

export interface Chain {
  cluster: string;
  base: string;
  /** The base snapshot's manifest as stored; undefined when the base is gone (the chain is unusable). */
  baseManifest: StoredManifest | undefined;
  /** Ordered by seq. */
  segments: SegmentKey[];
  gaps: Gap[];
  /** [base.finishedAt, last segment's to] minus the gaps; empty without a base or segments. */
  windows: Window[];
  /** The first break in the chain that its keys show (a hole in seq or time), if any. */
  broken?: { key: string; message: string };
}

const SIG = signatureKey("");

/** Every segment key under journal/, grouped by cluster and base, ordered by seq, each marked signed or not. */
export async function listSegments(storage: StorageBackend): Promise<Map<string, SegmentKey[]>> {
  const chains = new Map<string, SegmentKey[]>();
  const signatures = new Set<string>();
  for await (const { key } of storage.list(JOURNAL_PREFIX)) {
    if (key.endsWith(SIG)) signatures.add(key.slice(0, -SIG.length));
    const k = parseSegmentKey(key);
    if (!k) continue;
    const id = `${k.cluster}/${k.base}`;
    chains.set(id, [...(chains.get(id) ?? []), k]);
  }
  for (const segs of chains.values()) {
    segs.sort((a, b) => a.seq - b.seq);
    for (const s of segs) s.signed = signatures.has(segmentKey(s));
  }
  return chains;
}

/** The first discontinuity the keys show: a missing seq, a repeated one, or a hole in time. */
export function checkContinuity(segments: SegmentKey[]): Chain["broken"] {
  for (const [i, s] of segments.entries()) {
    const prev = segments[i - 1];
    if (s.seq !== i + 1) {
      const message =
        prev && s.seq === prev.seq
          ? `segment ${s.seq} appears twice`
          : `segment ${i + 1} is missing (the next is ${s.seq})`;
      return { key: segmentKey(s), message };
    }
    if (prev && s.from.getTime() !== prev.to.getTime()) {
      return {
        key: segmentKey(s),
        message: `starts at ${s.from.toISOString()}, segment ${prev.seq} ended at ${prev.to.toISOString()}`,
      };
    }
  }
  return undefined;
}

/**
 * The closed intervals [start, end] minus every gap's open interval (from, to): a point at a gap's
 * edge is exact (the state at `to` is exact again), a point strictly inside is not.
 */
export function subtractGaps(start: Date, end: Date, gaps: { from: Date; to: Date }[]): Window[] {
  if (end < start) return [];
  const sorted = [...gaps].sort((a, b) => a.from.getTime() - b.from.getTime());
  const out: Window[] = [];
  let from = start.getTime();
  const stop = end.getTime();
  for (const g of sorted) {
    const gf = g.from.getTime();
    const gt = g.to.getTime();
    if (gt <= from || gf >= stop) continue;
    if (gf > from) out.push({ from: new Date(from), to: new Date(gf) });
    from = Math.max(from, gt);
  }
  if (from <= stop) out.push({ from: new Date(from), to: new Date(stop) });
  return out;
}

/** The gap records of one `.gap` segment (read and checked like any segment). */
async function readGaps(storage: StorageBackend, seg: SegmentKey, prev: string | null): Promise<Gap[]> {
  const key = segmentKey(seg);
  if (seg.encrypted && !identitiesFor(storage)) {
    // without a key only the segment's window is known: take all of it as the gap
    const reason = "in an encrypted segment: its exact window and reason need --identity";
    return [{ from: seg.from, to: seg.to, reason, resources: ["*"], segment: key }];
  }
  const gaps: Gap[] = [];
  const records = await readStoredSegment(storage, seg, prev);
  for await (const r of records) {
    if (r.op === "gap") {
      gaps.push({
        from: new Date(r.from),
        to: new Date(r.to),
        reason: r.reason,
        resources: r.resources,
        segment: key,
      });
    }
  }
  return gaps;
}

/**
 * Every chain in the location (of one cluster, or all), with its gaps and windows, oldest base
 * first. Time between the base and the first segment that no segment covers counts as a gap:
 * nothing says what happened then.
 */
export async function listChains(
  storage: StorageBackend,
  cluster?: string,
  now: Date = new Date(),
): Promise<Chain[]> {
  const segments = await listSegments(storage);
  if (segments.size === 0) return [];
  const bases = new Map((await listSnapshots(storage, () => undefined)).map((s) => [s.id, s.manifest]));
  const chains: Chain[] = [];
  for (const [id, segs] of [...segments].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [uid, base] = id.split("/") as [string, string];
    if (cluster !== undefined && uid !== cluster) continue;
    const baseManifest = bases.get(base);
    const chain: Chain = { cluster: uid, base, baseManifest, segments: segs, gaps: [], windows: [] };
    const broken = checkContinuity(segs);
    if (broken) chain.broken = broken;
    // a segment ending ahead of this clock is forged or mis-dated: the chain ends before it, so
    // `--at now` and retention are not steered by it
    const future = segs.findIndex((s) => inTheFuture(s.to, now));
    const usable = future < 0 ? segs : segs.slice(0, future);
    const brokenAt = broken ? segs.findIndex((s) => segmentKey(s) === broken.key) : segs.length;
    if (future >= 0 && future < brokenAt) {
      // the first break is what a replay meets: the future segment, unless a hole comes before it
      chain.broken = {
        key: segmentKey(segs[future]!),
        message: `ends at ${segs[future]!.to.toISOString()}, in the future (this machine's clock says ${now.toISOString()}): refused`,
      };
    }
    for (const [i, s] of usable.entries()) {
      if (!s.gap) continue;
      try {
        chain.gaps.push(...(await readGaps(storage, s, segs[i - 1]?.sha256 ?? null)));
      } catch (e) {
        // a listing still shows the chain; a replay reading this segment refuses it
        if (!(e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID")) throw e;
        chain.broken ??= { key: segmentKey(s), message: e.message.replace(/^journal segment \S+: /, "") };
      }
    }
    if (baseManifest && baseManifest.cluster.uid === uid && usable.length > 0) {
      const start = new Date(baseManifest.finishedAt);
      if (usable[0]!.from > start) {
        chain.gaps.unshift({
          from: start,
          to: usable[0]!.from,
          reason: "not recorded: the journal starts after its base",
          resources: ["*"],
          segment: "",
        });
      }
      chain.windows = subtractGaps(start, usable.at(-1)!.to, chain.gaps);
    }
    chains.push(chain);
  }
  return chains.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
}

/** A chain as `list -o json` and `inspect -o json` show it (README, "-o json"). */
export interface ChainSummary {
  cluster: string;
  base: string;
  /** The base's finishedAt .. the last segment's `to`; null without a base. */
  from: string | null;
  to: string;
  segments: number;
  windows: { from: string; to: string }[];
  gaps: { from: string; to: string; reason: string; resources: string[] }[];
  /** Why replay past a point will fail (a missing or unreadable segment), if it will. */
  broken?: string;
}

export function summarizeChain(c: Chain): ChainSummary {
  const out: ChainSummary = {
    cluster: c.cluster,
    base: c.base,
    from: c.baseManifest?.finishedAt ? new Date(c.baseManifest.finishedAt).toISOString() : null,
    to: c.segments.at(-1)!.to.toISOString(),
    segments: c.segments.length,
    windows: c.windows.map((w) => ({ from: w.from.toISOString(), to: w.to.toISOString() })),
    gaps: c.gaps.map((g) => ({
      from: g.from.toISOString(),
      to: g.to.toISOString(),
      reason: g.reason,
      resources: g.resources,
    })),
  };
  if (c.broken) out.broken = `${c.broken.key}: ${c.broken.message}`;
  return out;
}
