/**
 * Journal chains in retention: a chain without its base is useless (replay starts from the base),
 * a base without its chain is still a snapshot. So a chain goes after its base's manifest, never
 * before, and a chain whose base is gone (a prune or delete interrupted between the two) goes at
 * the next prune.
 */
import { signatureKey } from "../signing/stored.ts";
import { listSegments } from "../journal/chains.ts";
import { segmentKey, type SegmentKey } from "../journal/segment-key.ts";
import { CrdBackupError } from "../errors.ts";
import type { StorageBackend } from "../storage/backend.ts";

export interface JournalRemoval {
  cluster: string;
  base: string;
  segments: number;
}

/**
 * The chains of a listing (listSegments) whose base is not among `bases` (the snapshots still
 * there, unreadable ones included): of the given clusters, or of every cluster.
 */
export function chainsWithoutBase(
  listing: Map<string, SegmentKey[]>,
  bases: Set<string>,
  clusters?: string[],
): JournalRemoval[] {
  const out: JournalRemoval[] = [];
  for (const [id, segments] of listing) {
    const [cluster, base] = id.split("/") as [string, string];
    if (bases.has(base) || (clusters && !clusters.includes(cluster))) continue;
    out.push({ cluster, base, segments: segments.length });
  }
  return out.sort((a, b) => (a.base < b.base ? -1 : 1));
}

/**
 * Removes a chain's segments, newest first, so an interrupted removal leaves a chain's prefix. A
 * segment still under Object Lock (written after its base, so locked longer) stops the removal
 * there: the base-less prefix that stays is removed by a later prune, once its lock has passed.
 */
export async function removeChain(storage: StorageBackend, cluster: string, base: string): Promise<number> {
  const segments = (await listSegments(storage)).get(`${cluster}/${base}`) ?? [];
  let removed = 0;
  for (const s of [...segments].reverse()) {
    try {
      // its signature first: an interrupted removal never leaves a .sig that no listing shows
      if (s.signed) await storage.remove(signatureKey(segmentKey(s)));
      await storage.remove(segmentKey(s));
    } catch (e) {
      if (e instanceof CrdBackupError && e.code === "LOCKED") break;
      throw e;
    }
    removed++;
  }
  return removed;
}

/** Removes every chain of `base`, whatever its cluster (delete of an unreadable snapshot knows none). */
export async function removeChainsOf(storage: StorageBackend, base: string): Promise<number> {
  let removed = 0;
  for (const id of (await listSegments(storage)).keys()) {
    const [cluster, b] = id.split("/") as [string, string];
    if (b === base) removed += await removeChain(storage, cluster, b);
  }
  return removed;
}
