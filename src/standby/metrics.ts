import { gauge, Histogram, type Metric } from "../report/metrics.ts";

/** Upper bounds (seconds) of the per-change lag histogram's buckets. */
const LAG_BUCKETS = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 900];

/** What `crd-backup standby` counts, for /metrics. */
export class StandbyStats {
  applied = 0;
  errors = 0;
  resyncs = 0;
  /** Seconds from the newest applied change's record time to its application, at the last step. */
  lag = 0;
  /** Unix seconds of the point in time the target last equalled (undefined: not yet). */
  appliedUntil: number | undefined;
  /** Per change (event), seconds of lag. */
  readonly lagHistogram = new Histogram(LAG_BUCKETS);

  observeLag(seconds: number): void {
    this.lagHistogram.observe(seconds);
  }
}

const counter = (name: string, help: string, value: number): Metric => ({
  name,
  help,
  type: "counter",
  samples: [{ value }],
});

export function standbyMetrics(s: StandbyStats): Metric[] {
  const metrics: Metric[] = [
    gauge(
      "crd_backup_standby_lag_seconds",
      "seconds from the record time of the newest change applied to its application on the target, at the last step",
      s.lag,
    ),
    s.lagHistogram.metric(
      "crd_backup_standby_change_lag_seconds",
      "per change followed, seconds from its record time to its application on the target",
    ),
    counter(
      "crd_backup_standby_applied_changes_total",
      "writes to the target: objects created, updated or deleted",
      s.applied,
    ),
    counter(
      "crd_backup_standby_errors_total",
      "objects the target refused (retried with backoff) and steps that failed",
      s.errors,
    ),
    counter(
      "crd_backup_standby_resyncs_total",
      "whole syncs: at start, on a new chain, after a gap",
      s.resyncs,
    ),
  ];
  if (s.appliedUntil !== undefined)
    metrics.push(
      gauge(
        "crd_backup_standby_applied_until_timestamp_seconds",
        "the point in time (unix seconds) of the source that the target equals",
        s.appliedUntil,
      ),
    );
  return metrics;
}
