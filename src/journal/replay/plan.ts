/**
 * Which chain and segments a point in time needs (docs/format.md, "Replay" steps 1-2), decided
 * from the listing alone: a time outside every recoverable window is a usage error naming the
 * windows, and nothing beyond the listing (and the `.gap` segments) has been read.
 */
import { CrdBackupError, SourceRefusedError } from "../../errors.ts";
import { isRfc3339 } from "../../units/time.ts";
import type { StorageBackend } from "../../storage/backend.ts";
import { listChains, type Chain, type Window } from "../chains.ts";
import { segmentKey, type SegmentKey } from "../segment-key.ts";

/** A point in time of one cluster: what `--at` (and `--cluster`) say. */
export interface PointInTimeRef {
  at: Date | "now";
  /** A unique prefix of the cluster's uid; needed when the location holds several clusters' journals. */
  cluster?: string;
}

export interface PointInTimePlan {
  at: Date;
  cluster: string;
  base: string;
  /** Segments to read, in order: those starting before `at`. */
  segments: SegmentKey[];
  /**
   * `prev` of the first segment: null when the chain is read from its start (every plan made
   * here); a standby advancing a state it holds reads on from a segment's hash.
   */
  prevOfFirst: string | null;
}

/** `--at`'s value: an RFC 3339 time or "now". */
export function parseAt(value: string): Date | "now" {
  if (value === "now") return "now";
  if (!isRfc3339(value)) {
    throw new CrdBackupError(
      "USAGE",
      `--at ${JSON.stringify(value)} is not an RFC 3339 time (like 2026-12-03T05:20:00Z) or "now"`,
    );
  }
  return new Date(value);
}

export function describeWindows(windows: Window[]): string {
  return windows.map((w) => `${w.from.toISOString()} .. ${w.to.toISOString()}`).join(", ") || "none";
}

function describeCluster(uid: string, chains: Chain[]): string {
  return `cluster ${uid}: ${describeWindows(chains.flatMap((c) => c.windows))}`;
}

/** The chains of the one cluster the reference names (a usage error when that is ambiguous). */
async function clusterChains(storage: StorageBackend, ref: PointInTimeRef): Promise<[string, Chain[]]> {
  const all = (await listChains(storage)).filter((c) => c.windows.length > 0);
  const uids = [...new Set(all.map((c) => c.cluster))];
  const chosen = ref.cluster === undefined ? uids : uids.filter((u) => u.startsWith(ref.cluster!));
  const byCluster = (uid: string) => all.filter((c) => c.cluster === uid);
  if (chosen.length === 0) {
    throw new CrdBackupError(
      "USAGE",
      ref.cluster === undefined
        ? `no recoverable window in ${storage.location}: it holds no journal with its base (crd-backup record writes them)`
        : `no journal of a cluster ${ref.cluster}… in ${storage.location} (recorded: ${uids.map((u) => describeCluster(u, byCluster(u))).join("; ") || "none"})`,
    );
  }
  if (chosen.length > 1) {
    throw new CrdBackupError(
      "USAGE",
      `--at is ambiguous: ${storage.location} holds journals of ${chosen.length} clusters (${chosen.map((u) => describeCluster(u, byCluster(u))).join("; ")}); say --cluster <uid prefix>`,
    );
  }
  return [chosen[0]!, byCluster(chosen[0]!)];
}

/**
 * The newest chain in one of whose windows T lies (for "now": the end of the newest window), and
 * the segments to read. A chain whose keys show a break before T is a SourceRefusedError
 * (ARCHIVE_INVALID) naming the segment; outside every window is USAGE naming them.
 */
export async function planPointInTime(
  storage: StorageBackend,
  ref: PointInTimeRef,
): Promise<PointInTimePlan> {
  const [cluster, chains] = await clusterChains(storage, ref);
  let at: Date;
  let chain: Chain | undefined;
  if (ref.at === "now") {
    for (const c of chains) {
      const end = c.windows.at(-1)!.to;
      if (!chain || end >= at!) [chain, at] = [c, end];
    }
  } else {
    at = ref.at;
    chain = chains.findLast((c) => c.windows.some((w) => w.from <= at && at <= w.to));
  }
  if (!chain) {
    throw new CrdBackupError(
      "USAGE",
      `--at ${at!.toISOString()} is not in a recoverable window of ${describeCluster(cluster, chains)}`,
      { cluster },
    );
  }
  const segments = chain.segments.filter((s) => s.from < at!);
  if (chain.broken) {
    const i = chain.segments.findIndex((s) => segmentKey(s) === chain!.broken!.key);
    const prev = chain.segments[i - 1];
    if (i <= 0 || !prev || at! > prev.to) {
      throw new SourceRefusedError(
        { segment: chain.broken.key },
        `journal segment ${chain.broken.key}: ${chain.broken.message}`,
        { key: chain.broken.key },
      );
    }
  }
  return {
    at: at!,
    cluster,
    base: chain.base,
    segments: segments.slice(0, countUpTo(segments, chain)),
    prevOfFirst: null,
  };
}

/** Segments up to (not including) the break, when the break lies beyond T. */
function countUpTo(segments: SegmentKey[], chain: Chain): number {
  if (!chain.broken) return segments.length;
  const i = segments.findIndex((s) => segmentKey(s) === chain.broken!.key);
  return i < 0 ? segments.length : i;
}
