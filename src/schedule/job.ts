import type { KubeClient } from "../kube/client.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import { recordRun, type RunOutcome, type SnapshotRunState } from "../report/snapshot-metrics.ts";
import type { RetentionPolicy } from "../retention/policy.ts";
import { prune, type PruneReport } from "../retention/prune.ts";
import { takeSnapshot, type SnapshotOptions, type SnapshotResult } from "../snapshot/take.ts";
import type { StorageBackend } from "../storage/backend.ts";

/** Leftovers younger than this may belong to a snapshot still running (perhaps another cluster's). */
export const DEFAULT_GRACE_MS = 24 * 3600_000;

export interface JobOptions {
  snapshot: SnapshotOptions;
  /** Retention for the snapshotted cluster, applied after a snapshot that captured anything. */
  retention?: RetentionPolicy;
  graceMs?: number;
  log?: Logger;
}

export interface JobResult {
  outcome: RunOutcome;
  snapshot?: SnapshotResult;
  prune?: PruneReport;
  /** The error that failed the snapshot, or the retention after it. */
  error?: unknown;
  state: SnapshotRunState;
}

/**
 * One unattended run: a snapshot, then retention for that snapshot's cluster only (so clusters
 * sharing a prefix never prune each other), then the run recorded for metrics. Never throws: the
 * caller decides the exit code from the outcome and the error.
 */
export async function runSnapshotJob(
  client: KubeClient,
  storage: StorageBackend,
  state: SnapshotRunState,
  options: JobOptions,
): Promise<JobResult> {
  const log = options.log ?? silentLogger;
  const started = performance.now();
  const finish = (outcome: RunOutcome, rest: Omit<JobResult, "outcome" | "state">): JobResult => ({
    outcome,
    ...rest,
    state: recordRun(state, {
      finishedAt: new Date(),
      durationSeconds: Math.round(performance.now() - started) / 1000,
      outcome,
      manifest: rest.snapshot?.manifest,
      pruned: rest.prune ? rest.prune.clusters.reduce((n, c) => n + c.remove.length, 0) : undefined,
    }),
  });

  let snapshot: SnapshotResult;
  try {
    snapshot = await takeSnapshot(client, storage, options.snapshot);
  } catch (error) {
    return finish("failure", { error });
  }
  const outcome = snapshot.manifest.status === "partial" ? "partial" : "success";
  if (!options.retention) return finish(outcome, { snapshot });
  try {
    const report = await prune(storage, {
      policy: options.retention,
      clusters: [snapshot.manifest.cluster.uid],
      dryRun: false,
      graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
      log,
    });
    return finish(outcome, { snapshot, prune: report });
  } catch (error) {
    log.error("retention failed after the snapshot", {
      snapshot: snapshot.id,
      error: (error as Error).message,
    });
    return finish(outcome, { snapshot, error });
  }
}
