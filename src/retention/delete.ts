import { isSnapshotId } from "../archive/format.ts";
import { CrdBackupError } from "../errors.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { listSnapshots, resolveSnapshot, type StoredSnapshot } from "../storage/snapshots.ts";
import { snapshotLockedUntil } from "./locks.ts";
import { removeChainsOf } from "./journal.ts";
import { removeSnapshot } from "./prune.ts";

export interface DeleteOptions {
  dryRun: boolean;
  /** Also delete a cluster's last complete snapshot. */
  allowLast: boolean;
  log?: Logger;
}

export interface DeleteReport {
  dryRun: boolean;
  /** A snapshot whose manifest cannot be read has status "unreadable" and cluster "" (unknown). */
  removed: { id: string; cluster: string; status: "complete" | "partial" | "unreadable" }[];
  /** Named snapshots storage holds under Object Lock: kept whole, with the date their lock ends. */
  locked: { id: string; until: string }[];
}

/**
 * Deletes the named snapshots (ids, `latest`, `latest@<uid>`; by id also one whose manifest cannot
 * be read, which prune leaves alone), each the way prune does: manifest first, so a crash half-way
 * never leaves a listed but broken snapshot. Everything is resolved and checked before anything
 * goes: an unknown id, or a delete that would leave a cluster with no complete snapshot (unless
 * allowLast), removes nothing.
 */
export async function deleteSnapshots(
  storage: StorageBackend,
  refs: string[],
  options: DeleteOptions,
): Promise<DeleteReport> {
  const log = options.log ?? silentLogger;
  const targets = new Map<string, StoredSnapshot>();
  // prune leaves snapshots it cannot read to a human: named by id, they can go
  const unreadable = new Set<string>();
  for (const ref of refs) {
    try {
      const s = await resolveSnapshot(storage, ref);
      targets.set(s.id, s);
    } catch (e) {
      if (!(e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID" && isSnapshotId(ref))) throw e;
      unreadable.add(ref);
    }
  }
  if (!options.allowLast) {
    const all = await listSnapshots(storage, () => undefined);
    for (const uid of new Set([...targets.values()].map((s) => s.manifest.cluster.uid))) {
      const complete = all.filter((s) => s.manifest.cluster.uid === uid && s.manifest.status === "complete");
      if (complete.length > 0 && complete.every((s) => targets.has(s.id))) {
        throw new CrdBackupError(
          "USAGE",
          `that would delete the last complete snapshot of cluster ${uid} (${complete.at(-1)!.id}); nothing was deleted (--allow-last deletes it anyway)`,
          { cluster: uid },
        );
      }
    }
  }
  const all: DeleteReport["removed"] = [
    ...[...targets.values()].map((s) => ({
      id: s.id,
      cluster: s.manifest.cluster.uid,
      status: s.manifest.status,
    })),
    ...[...unreadable].map((id) => ({ id, cluster: "", status: "unreadable" as const })),
  ].sort((a, b) => (a.id < b.id ? -1 : 1));
  // a snapshot storage would refuse to delete is left whole rather than half-deleted
  const removed: DeleteReport["removed"] = [];
  const locked: DeleteReport["locked"] = [];
  const now = new Date();
  for (const r of all) {
    const until = await snapshotLockedUntil(storage, r.id);
    if (until && until > now) {
      locked.push({ id: r.id, until: until.toISOString() });
      log.warn("snapshot kept: locked", { snapshot: r.id, until: until.toISOString() });
    } else removed.push(r);
  }
  if (options.dryRun) return { dryRun: true, removed, locked };
  for (const r of removed) {
    await removeSnapshot(storage, r.id);
    // its journal chain after it (a chain without its base cannot be replayed)
    const segments = await removeChainsOf(storage, r.id);
    log.info("snapshot removed", {
      snapshot: r.id,
      cluster: r.cluster,
      ...(segments ? { journalSegments: segments } : {}),
    });
  }
  return { dryRun: false, removed, locked };
}
