import { readFile } from "node:fs/promises";
import type { Manifest } from "../archive/manifest.ts";
import { gauge, type Metric } from "./metrics.ts";

export type RunOutcome = "success" | "partial" | "failure";

/** What the metrics say about scheduled snapshots: the last run, and counts across runs. */
export interface SnapshotRunState {
  lastRun?: {
    finishedAt: Date;
    durationSeconds: number;
    outcome: RunOutcome;
    manifest?: Manifest;
    /** Snapshots the retention run after it removed. */
    pruned?: number;
  };
  /** The last run that produced a usable snapshot (success or partial: something was captured). */
  lastSuccess?: Date;
  runs: Record<RunOutcome, number>;
  /** Ticks of the schedule skipped because the previous snapshot was still running. */
  skipped: number;
}

export const emptyRunState = (): SnapshotRunState => ({
  runs: { success: 0, partial: 0, failure: 0 },
  skipped: 0,
});

export function recordRun(
  state: SnapshotRunState,
  run: NonNullable<SnapshotRunState["lastRun"]>,
): SnapshotRunState {
  return {
    ...state,
    lastRun: run,
    lastSuccess: run.outcome === "failure" ? state.lastSuccess : run.finishedAt,
    runs: { ...state.runs, [run.outcome]: state.runs[run.outcome] + 1 },
  };
}

/**
 * The metrics users alert on: "no successful backup in 24h" is
 * `time() - crd_backup_snapshot_last_success_timestamp_seconds > 86400`.
 */
export function snapshotMetrics(state: SnapshotRunState): Metric[] {
  const metrics: Metric[] = [];
  if (state.lastSuccess) {
    metrics.push(
      gauge(
        "crd_backup_snapshot_last_success_timestamp_seconds",
        "when the last snapshot that captured anything finished (unix seconds)",
        state.lastSuccess.getTime() / 1000,
      ),
    );
  }
  metrics.push({
    name: "crd_backup_snapshot_runs_total",
    help: "snapshot runs by outcome",
    type: "counter",
    samples: (["success", "partial", "failure"] as const).map((outcome) => ({
      labels: { outcome },
      value: state.runs[outcome],
    })),
  });
  metrics.push({
    name: "crd_backup_snapshot_skipped_total",
    help: "scheduled snapshots skipped because the previous one was still running",
    type: "counter",
    samples: [{ value: state.skipped }],
  });
  const run = state.lastRun;
  if (!run) return metrics;
  metrics.push(
    gauge(
      "crd_backup_snapshot_last_run_timestamp_seconds",
      "when the last snapshot run finished (unix seconds)",
      run.finishedAt.getTime() / 1000,
    ),
    gauge(
      "crd_backup_snapshot_last_run_success",
      "1 if the last run captured everything",
      run.outcome === "success" ? 1 : 0,
    ),
    gauge(
      "crd_backup_snapshot_last_run_partial",
      "1 if the last run missed some resources",
      run.outcome === "partial" ? 1 : 0,
    ),
    gauge("crd_backup_snapshot_duration_seconds", "duration of the last snapshot run", run.durationSeconds),
  );
  if (run.manifest) {
    const resources = run.manifest.resources;
    const label = (r: (typeof resources)[number]) => ({ resource: `${r.plural}.${r.group}` });
    metrics.push(
      gauge(
        "crd_backup_snapshot_objects",
        "objects captured per resource by the last run",
        resources.map((r) => ({ labels: label(r), value: r.count })),
      ),
      gauge(
        "crd_backup_snapshot_bytes",
        "bytes captured per resource by the last run (uncompressed)",
        resources.map((r) => ({ labels: label(r), value: r.bytes })),
      ),
      gauge(
        "crd_backup_snapshot_resource_errors",
        "resources the last run could not capture",
        resources.filter((r) => r.errors.length > 0).length,
      ),
      gauge(
        "crd_backup_snapshot_archive_bytes",
        "size of the last snapshot's archive (compressed)",
        run.manifest.archive.size,
      ),
    );
  }
  if (run.pruned !== undefined) {
    metrics.push(
      gauge(
        "crd_backup_prune_removed_snapshots",
        "snapshots the retention after the last run removed",
        run.pruned,
      ),
    );
  }
  return metrics;
}

/**
 * The counters and last success a previous run left in a metrics file: each CronJob run is a
 * new process, and "last success" must survive a failed run.
 */
export async function previousRunState(file: string): Promise<SnapshotRunState> {
  const state = emptyRunState();
  const text = await readFile(file, "utf8").catch(() => "");
  const value = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const last = value(/^crd_backup_snapshot_last_success_timestamp_seconds ([\d.e+]+)$/m);
  if (last !== undefined && Number.isFinite(last)) state.lastSuccess = new Date(last * 1000);
  for (const outcome of ["success", "partial", "failure"] as const) {
    const n = value(new RegExp(`^crd_backup_snapshot_runs_total\\{outcome="${outcome}"\\} (\\d+)$`, "m"));
    if (n !== undefined) state.runs[outcome] = n;
  }
  state.skipped = value(/^crd_backup_snapshot_skipped_total (\d+)$/m) ?? 0;
  return state;
}
