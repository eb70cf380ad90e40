import { randomBytes } from "node:crypto";
import type { ManifestResource } from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { clusterIdentity } from "../kube/cluster.ts";
import type { ModifierSet } from "../modifiers/types.ts";
import { liveCrd } from "../objects/live.ts";
import type { RestoreReport } from "../restore/report.ts";
import { restoreVerified } from "../restore/restore.ts";
import { openSource, type SnapshotRef } from "../source/open.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import { resourceSelected, type Filters } from "../objects/filters.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { checkRestored, type ResourceCheck } from "./check.ts";
import { cleanupDrill, type CleanupReport } from "./cleanup.ts";

/** Everything a drill creates carries this label, with the drill's id as value: cleanup deletes by it. */
export const DRILL_LABEL = "crd-backup.io/drill";

export interface DrillOptions {
  filters: Filters;
  /** Restore every namespace as prefix+name: how a drill runs on the snapshot's own cluster. */
  namespacePrefix?: string;
  restoreStatus: boolean;
  waitTimeoutMs: number;
  concurrency: number;
  cleanup: boolean;
  /** On cleanup, clear the finalizers that still hold deleted drill objects. */
  removeFinalizers: boolean;
  /** Names listed per resource for missing or changed objects. */
  maxNames: number;
  signal?: AbortSignal;
  /** Resource modifier rules: restored objects are checked against the patched snapshot objects. */
  modifiers?: ModifierSet;
  /** As RestoreOptions.onSourceSize: the source's object count, before its verification pass. */
  onSourceSize?: (objects: number) => void;
}

export interface DrillReport {
  drillId: string;
  snapshotId: string;
  result: "pass" | "fail";
  /** Why the drill failed; empty when it passed. */
  reasons: string[];
  target: { server: string; sameCluster: boolean; namespacePrefix?: string };
  startedAt: string;
  finishedAt: string;
  /** Seconds per step; rto is the time to recover: start of restore to the last object verified. */
  timings: { verify: number; restore: number; check: number; rto: number; cleanup?: number };
  objects: { expected: number; matched: number; missing: number; changed: number; perSecond: number };
  /** Resources of the snapshot this drill could not exercise on this target, and why. */
  notDrilled: { resource: string; reason: string }[];
  restore: Pick<RestoreReport, "status" | "counts"> & {
    /** The restore's failures and conflicts (the full per-object report comes from `restore`). */
    problems: { resource: string; namespace?: string; name: string; outcome: string; reason?: string }[];
  };
  checks: ResourceCheck[];
  cleanup?: CleanupReport;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

/** A label-safe id that sorts by time: drill-20261122t101500-1a2b3c. */
function newDrillId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "")
    .toLowerCase();
  return `drill-${stamp}-${randomBytes(3).toString("hex")}`;
}

/**
 * What can be drilled on this target. On the snapshot's own cluster only namespaced objects of
 * CRDs that are already there: cluster-scoped objects and CRDs would be the live ones themselves.
 */
async function drillable(
  client: KubeClient,
  resources: ManifestResource[],
  sameCluster: boolean,
  signal?: AbortSignal,
): Promise<{ drilled: ManifestResource[]; notDrilled: DrillReport["notDrilled"] }> {
  const drilled: ManifestResource[] = [];
  const notDrilled: DrillReport["notDrilled"] = [];
  for (const r of resources) {
    const resource = `${r.plural}.${r.group}`;
    if (!sameCluster) drilled.push(r);
    else if (!r.namespaced) {
      notDrilled.push({ resource, reason: "cluster-scoped: drilling it needs a separate --target-context" });
    } else if (!(await liveCrd(client, resource, signal))) {
      notDrilled.push({
        resource,
        reason: "its CRD is not on this cluster, and CRDs are drilled only with --target-context",
      });
    } else drilled.push(r);
  }
  return { drilled, notDrilled };
}

/**
 * A rehearsal of a recovery: verify the snapshot, restore it into a target that is not its source
 * (another cluster, or scratch namespaces on the same one) with the restore planner, check that
 * the target now holds exactly the snapshot, time it, and optionally remove what it created.
 * A drill never changes what it did not create: objects already in the target are left alone and
 * count as differences when they do not match.
 */
export async function runDrill(
  client: KubeClient,
  storage: StorageBackend,
  ref: SnapshotRef,
  options: DrillOptions,
  log: Logger = silentLogger,
): Promise<DrillReport> {
  const startedAt = new Date();
  const drillId = newDrillId(startedAt);
  const label = { key: DRILL_LABEL, value: drillId };
  const target = await clusterIdentity(client, options.signal);

  const t0 = performance.now();
  await using snapshot = await openSource(storage, ref, options.signal, (manifest) => {
    options.onSourceSize?.(manifest.counts.objects);
    return undefined;
  });
  const tVerified = performance.now();
  const sameCluster = target.uid === snapshot.manifest.cluster.uid;
  if (sameCluster && !options.namespacePrefix) {
    throw new CrdBackupError(
      "USAGE",
      `the target is the cluster snapshot ${snapshot.id} was taken from; drill into another --target-context, or into scratch namespaces with --namespace-prefix`,
    );
  }
  log.info("drill verified the snapshot", {
    drill: drillId,
    snapshot: snapshot.id,
    seconds: seconds(tVerified - t0),
  });

  const selected = snapshot.manifest.resources.filter((r) =>
    resourceSelected(options.filters, r.group, r.plural),
  );
  const { drilled, notDrilled } = await drillable(client, selected, sameCluster, options.signal);
  const filters: Filters = {
    ...options.filters,
    excludeResources: [...options.filters.excludeResources, ...notDrilled.map((n) => n.resource)],
  };
  const mapping = { namespaceMap: new Map<string, string>(), namespacePrefix: options.namespacePrefix };

  const tRestore = performance.now();
  await using restore = await restoreVerified(
    client,
    snapshot,
    {
      filters,
      ...mapping,
      // a drill never modifies what it did not create
      existing: "skip",
      existingFor: new Map(),
      restoreStatus: options.restoreStatus,
      dryRun: false,
      waitTimeoutMs: options.waitTimeoutMs,
      concurrency: options.concurrency,
      signal: options.signal,
      createdLabel: label,
      modifiers: options.modifiers,
    },
    log,
  );
  const tRestored = performance.now();
  log.info("drill restored", {
    drill: drillId,
    status: restore.status,
    seconds: seconds(tRestored - tRestore),
  });

  const checks = await checkRestored(client, snapshot, drilled, {
    filters,
    mapping,
    withStatus: options.restoreStatus,
    label,
    maxNames: options.maxNames,
    signal: options.signal,
    modifiers: options.modifiers,
  });
  const tChecked = performance.now();

  const sum = (f: (c: ResourceCheck) => number) => checks.reduce((n, c) => n + f(c), 0);
  const objects = {
    expected: sum((c) => c.expected),
    matched: sum((c) => c.matched),
    missing: sum((c) => c.missingCount),
    changed: sum((c) => c.changedCount),
    perSecond: 0,
  };
  const rtoMs = tChecked - tRestore;
  objects.perSecond = rtoMs > 0 ? Math.round((objects.matched / rtoMs) * 1000 * 10) / 10 : 0;

  const reasons: string[] = [];
  if (drilled.length === 0) reasons.push("nothing in the snapshot could be drilled on this target");
  const problems = restore.problems;
  const problemCount = restore.counts.failed + restore.counts.conflict;
  if (problemCount > 0) reasons.push(`the restore reported ${problemCount} failures or conflicts`);
  const notEstablished = checks.filter((c) => !c.crdEstablished).map((c) => c.resource);
  if (notEstablished.length > 0) reasons.push(`CRDs not Established: ${notEstablished.join(", ")}`);
  if (objects.missing > 0)
    reasons.push(`${objects.missing} objects of the snapshot are missing from the target`);
  if (objects.changed > 0) reasons.push(`${objects.changed} objects in the target differ from the snapshot`);

  let cleanup: CleanupReport | undefined;
  let cleanupSeconds: number | undefined;
  if (options.cleanup) {
    const t = performance.now();
    cleanup = await cleanupDrill(client, drilled, label, {
      concurrency: options.concurrency,
      removeFinalizers: options.removeFinalizers,
      signal: options.signal,
    });
    cleanupSeconds = seconds(performance.now() - t);
    if (cleanup.failures.length > 0)
      reasons.push(`cleanup could not delete ${cleanup.failures.length} objects`);
  }

  return {
    drillId,
    snapshotId: snapshot.id,
    result: reasons.length === 0 ? "pass" : "fail",
    reasons,
    target: { server: target.server, sameCluster, namespacePrefix: options.namespacePrefix },
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    timings: {
      verify: seconds(tVerified - t0),
      restore: seconds(tRestored - tRestore),
      check: seconds(tChecked - tRestored),
      rto: seconds(rtoMs),
      ...(cleanupSeconds === undefined ? {} : { cleanup: cleanupSeconds }),
    },
    objects,
    notDrilled,
    restore: {
      status: restore.status,
      counts: restore.counts,
      problems: problems.slice(0, options.maxNames).map((e) => ({
        resource: e.resource,
        namespace: e.namespace,
        name: e.name,
        outcome: e.outcome,
        reason: e.reason,
      })),
    },
    checks,
    ...(cleanup ? { cleanup } : {}),
  };
}
