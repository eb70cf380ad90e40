/**
 * What `list` shows of a location: every complete snapshot, the journal chain recorded after it
 * where there is one, and (with --keep-* rules) what prune would keep and why. One function for
 * `list -o json` and the web view's /api/snapshots, so the two never disagree.
 */
import { storedArchive, type StoredManifest } from "../archive/manifest.ts";
import { listChains, summarizeChain, type ChainSummary } from "../journal/chains.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { listSnapshots, type StoredSnapshot } from "../storage/snapshots.ts";
import type { RetentionPolicy } from "./policy.ts";
import { prune, type PruneReport } from "./prune.ts";

/** One snapshot as `list -o json` prints it (README, "-o json"). */
export interface SnapshotListing {
  id: string;
  status: StoredManifest["status"];
  startedAt: string;
  finishedAt: string;
  /** An encrypted snapshot's counts and server are sealed: its cluster is its uid alone. */
  cluster: StoredManifest["cluster"];
  toolVersion: string;
  formatVersion: number;
  encrypted?: true;
  recipients?: string[];
  counts?: { crds: number; namespaces: number; objects: number };
  size: number;
  journal?: ChainSummary & { retention: string };
  retention?: string;
}

export interface LocationListing {
  snapshots: StoredSnapshot[];
  /** Each chain by its base snapshot id. */
  chains: Map<string, ChainSummary>;
  report: PruneReport | undefined;
  retention: ReturnType<typeof retentionColumn>;
  /** The rows of `list -o json`. */
  rows: SnapshotListing[];
}

/**
 * What prune would do with each snapshot and chain, from a dry run of the --keep-* rules given;
 * without rules, what holds whatever they are: the newest chain of a cluster is always kept.
 */
function retentionColumn(report: PruneReport | undefined, chains: ChainSummary[]) {
  const newest = new Map<string, string>();
  for (const c of chains) if ((newest.get(c.cluster) ?? "") < c.base) newest.set(c.cluster, c.base);
  const kept = new Map(report?.chains.map((c) => [c.base, c.reasons.join(", ")]));
  const snapshots = new Map<string, string>();
  for (const c of report?.clusters ?? []) {
    for (const d of c.keep) snapshots.set(d.id, `keep (${d.reasons.join(", ")})`);
    for (const d of c.remove) snapshots.set(d.id, "prune removes it");
  }
  return {
    snapshot: (id: string) => snapshots.get(id) ?? "",
    chain: (c: ChainSummary) =>
      report
        ? kept.has(c.base)
          ? `keep (${kept.get(c.base)})`
          : "prune removes it"
        : newest.get(c.cluster) === c.base
          ? "kept: newest chain"
          : "kept while the --keep-* rules reach it",
  };
}

/** Reads the location's listing (a dry run of prune when a policy is given: nothing is removed). */
export async function listLocation(
  storage: StorageBackend,
  options: { policy?: RetentionPolicy; onUnreadable?: (id: string, e: Error) => void } = {},
): Promise<LocationListing> {
  const snapshots = await listSnapshots(storage, options.onUnreadable);
  // recorded windows (crd-backup record): each chain beside its base snapshot
  const chains = new Map((await listChains(storage)).map((c) => [c.base, summarizeChain(c)]));
  const report = options.policy
    ? await prune(storage, { policy: options.policy, dryRun: true, graceMs: 0 })
    : undefined;
  const retention = retentionColumn(report, [...chains.values()]);
  const rows = snapshots.map(({ id, manifest: m }): SnapshotListing => {
    const chain = chains.get(id);
    return {
      id,
      status: m.status,
      startedAt: m.startedAt,
      finishedAt: m.finishedAt,
      cluster: m.cluster,
      toolVersion: m.toolVersion,
      formatVersion: m.formatVersion,
      ...(m.sealed
        ? { encrypted: true as const, recipients: m.encryption.recipients }
        : { counts: m.counts }),
      size: storedArchive(m).size,
      ...(chain ? { journal: { ...chain, retention: retention.chain(chain) } } : {}),
      ...(report ? { retention: retention.snapshot(id) } : {}),
    };
  });
  return { snapshots, chains, report, retention, rows };
}
