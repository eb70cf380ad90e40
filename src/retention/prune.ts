import { ARCHIVE_NAME, inTheFuture, isSnapshotId, snapshotIdTime } from "../archive/format.ts";
import { CrdBackupError } from "../errors.ts";
import type { Logger } from "../report/log.ts";
import { silentLogger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { SNAPSHOTS_PREFIX, snapshotIdOfManifest } from "../storage/layout.ts";
import { listSnapshots, type StoredSnapshot } from "../storage/snapshots.ts";
import { listSegments } from "../journal/chains.ts";
import type { SegmentKey } from "../journal/segment-key.ts";
import { decideChains, type ChainCandidate, type ChainDecision } from "./chains.ts";
import { storedArchive } from "../archive/manifest.ts";
import { chainsWithoutBase, removeChain, type JournalRemoval } from "./journal.ts";
import { removeSnapshotKeys, snapshotKeys, snapshotLockedUntil } from "./locks.ts";
import { applyPolicy, type Decision, type RetentionPolicy } from "./policy.ts";

export interface PruneOptions {
  policy: RetentionPolicy;
  /** Only the snapshots of these clusters (kube-system uids); every cluster when absent. */
  clusters?: string[];
  dryRun: boolean;
  /**
   * Leftovers (archives without a manifest, unfinished uploads) younger than this may belong to a
   * snapshot in progress, perhaps another cluster's sharing the prefix: they are left alone.
   */
  graceMs: number;
  now?: Date;
  log?: Logger;
}

export interface ClusterPrune {
  uid: string;
  /** The server of the cluster's newest snapshot; "" when that one is encrypted (its server is sealed). */
  server: string;
  keep: Decision[];
  remove: Decision[];
}

export interface PruneReport {
  dryRun: boolean;
  clusters: ClusterPrune[];
  /** Snapshots whose manifest could not be read: never removed, reported for a human to look at. */
  unreadable: { id: string; reason: string }[];
  /** Archives of snapshots that never finished (no manifest), removed past the grace period. */
  orphans: string[];
  /** Unfinished multipart uploads or temp files removed. */
  incompleteWrites: number;
  /** Snapshots the policy would remove but storage holds under Object Lock: kept whole, and when their lock ends. */
  locked: { id: string; until: string }[];
  /** Journal chains whose base is not kept (or already gone): removed after their base. */
  journal: JournalRemoval[];
  /** Journal chains kept, each with why: point-in-time restores reach as far back as these. */
  chains: ChainDecision[];
}

/**
 * Applies a retention policy to every cluster's snapshots separately (several clusters may share
 * one prefix), then removes what it does not keep. A snapshot is removed manifest first: from
 * that moment it is no longer complete, so a crash half-way leaves only an archive that nothing
 * lists, which the next prune removes. Only keys of crd-backup's layout are ever touched.
 */
export async function prune(storage: StorageBackend, options: PruneOptions): Promise<PruneReport> {
  const log = options.log ?? silentLogger;
  const now = options.now ?? new Date();
  const report: PruneReport = {
    dryRun: options.dryRun,
    clusters: [],
    unreadable: [],
    orphans: [],
    incompleteWrites: 0,
    locked: [],
    journal: [],
    chains: [],
  };
  const snapshots = await listSnapshots(storage, (id, e) =>
    report.unreadable.push({ id, reason: e.message }),
  );
  // one listing of journal/ serves both the chains kept and the chains whose base goes
  const listing = await listSegments(storage);
  const chains = chainCandidates(listing, snapshots, now);

  const byCluster = new Map<string, typeof snapshots>();
  for (const s of snapshots) {
    const uid = s.manifest.cluster.uid;
    if (options.clusters && !options.clusters.includes(uid)) continue;
    byCluster.set(uid, [...(byCluster.get(uid) ?? []), s]);
  }
  for (const [uid, list] of [...byCluster].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const decisions = applyPolicy(
      list.map((s) => ({
        id: s.id,
        time: new Date(s.manifest.startedAt),
        complete: s.manifest.status === "complete",
      })),
      options.policy,
    );
    const chainDecisions = decideChains(decisions, chains.get(uid) ?? [], options.policy);
    report.chains.push(...chainDecisions.filter((c) => c.keep));
    const keep = decisions.filter((d) => d.keep);
    if (keep.length === 0) {
      // applyPolicy always keeps the newest snapshot; this guards the invariant, not a user choice
      throw new CrdBackupError(
        "USAGE",
        `retention would remove every snapshot of cluster ${uid}; nothing was removed`,
      );
    }
    // what storage would refuse to delete stays whole: kept, with the reason
    const remove: Decision[] = [];
    for (const d of decisions.filter((x) => !x.keep)) {
      const until = await snapshotLockedUntil(storage, d.id);
      if (until && until > now) {
        d.keep = true;
        d.reasons.push("locked");
        report.locked.push({ id: d.id, until: until.toISOString() });
        keep.push(d);
      } else remove.push(d);
    }
    const newest = list.at(-1)!.manifest;
    report.clusters.push({ uid, server: newest.sealed ? "" : newest.cluster.server, keep, remove });
  }

  // archives whose manifest never came: interrupted snapshots, or a prune interrupted between its two deletes
  const complete = new Set(snapshots.map((s) => s.id));
  for (const u of report.unreadable) complete.add(u.id);
  const cutoff = new Date(now.getTime() - options.graceMs);
  const current = new Map(snapshots.map((s) => [s.id, storedArchive(s.manifest).key]));
  const orphans = new Set<string>();
  for await (const { key } of storage.list(SNAPSHOTS_PREFIX)) {
    const m = /^snapshots\/([^/]+)\/([^/]+)$/.exec(key);
    const a = m && ARCHIVE_NAME.exec(m[2]!);
    if (!m || !a || !isSnapshotId(m[1]!) || snapshotIdOfManifest(key)) continue;
    const [id, name, rekeyed] = [m[1]!, m[2]!, a[1]];
    if (complete.has(id)) {
      // an archive its manifest no longer names: left by a rekey that was interrupted (named by
      // the time it started), kept unverified, or still locked. Its grace runs from the rekey
      // that replaced it, which the current archive's name dates
      const named = current.get(id);
      const switchedAt = /^archive\.([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})\./.exec(named ?? "")?.[1];
      const since = Math.max(
        snapshotIdTime(rekeyed ?? id).getTime(),
        switchedAt ? snapshotIdTime(switchedAt).getTime() : 0,
      );
      const stale = named !== undefined && named !== name && since < cutoff.getTime();
      if (!stale || (await storage.lockedUntil?.(key))) continue;
      report.orphans.push(`${id}/${name}`);
    } else if (snapshotIdTime(id) < cutoff && !(await storage.lockedUntil?.(key))) {
      orphans.add(id);
    }
  }
  report.orphans.push(...orphans);
  const removed = new Set(report.clusters.flatMap((c) => c.remove.map((d) => d.id)));
  const kept = new Set([...complete].filter((id) => !removed.has(id)));
  report.journal = chainsWithoutBase(listing, kept, options.clusters);

  if (options.dryRun) return report;
  for (const c of report.clusters) {
    for (const d of c.remove) {
      await removeSnapshot(storage, d.id);
      log.info("snapshot removed", { snapshot: d.id, cluster: c.uid });
    }
  }
  // after the bases' manifests: a chain is never left with a base that cannot replay it
  for (const j of report.journal) {
    await removeChain(storage, j.cluster, j.base);
    log.info("journal chain removed", { base: j.base, cluster: j.cluster, segments: j.segments });
  }
  for (const orphan of report.orphans) {
    if (orphan.includes("/")) await storage.remove(`${SNAPSHOTS_PREFIX}${orphan}`);
    else for (const key of await snapshotKeys(storage, orphan)) await storage.remove(key);
    log.info("unfinished snapshot removed", { snapshot: orphan });
  }
  report.incompleteWrites = await storage.cleanupIncomplete(SNAPSHOTS_PREFIX, { olderThan: cutoff });
  return report;
}

/**
 * Each cluster's chains whose base is a readable snapshot of that cluster, with the span they
 * cover; segments dated in the future are left out of it (they would keep a chain forever).
 */
function chainCandidates(
  listing: Map<string, SegmentKey[]>,
  snapshots: StoredSnapshot[],
  now: Date,
): Map<string, ChainCandidate[]> {
  const bases = new Map(snapshots.map((s) => [s.id, s.manifest]));
  const out = new Map<string, ChainCandidate[]>();
  for (const [id, segments] of listing) {
    const [cluster, base] = id.split("/") as [string, string];
    const manifest = bases.get(base);
    if (!manifest || manifest.cluster.uid !== cluster) continue;
    const from = new Date(manifest.finishedAt);
    const ends = segments.map((s) => s.to).filter((t) => !inTheFuture(t, now));
    const to = ends.reduce((a, b) => (a >= b ? a : b), from);
    out.set(cluster, [...(out.get(cluster) ?? []), { cluster, base, from, to, segments: segments.length }]);
  }
  return out;
}

/** Manifest first: from then on the snapshot is not listed, and a leftover archive is an orphan. */
export async function removeSnapshot(storage: StorageBackend, id: string): Promise<void> {
  await removeSnapshotKeys(storage, id);
}
