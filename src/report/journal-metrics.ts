import { gauge, Histogram, type Metric } from "./metrics.ts";

/** Upper bounds (seconds) of the journal lag histogram's buckets. */
const LAG_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900];

/**
 * What `crd-backup record` counts, for /metrics. Lag is per event: from its receipt to its
 * segment being stored (not merely spooled).
 */
export class JournalStats {
  events = 0;
  segments = 0;
  gaps = 0;
  /** Unix seconds of the last segment stored. */
  lastFlush: number | undefined;
  spoolBytes = 0;
  /** The largest lag in the last segment stored. */
  lastLag = 0;
  /** performance.now() of the oldest event received and not yet stored (undefined: none). */
  oldestPending: () => number | undefined = () => undefined;
  /** Per change (event), seconds of lag. */
  readonly lagHistogram = new Histogram(LAG_BUCKETS);

  observeLag(seconds: number): void {
    this.lagHistogram.observe(seconds);
  }

  /** Now: the wait of the oldest event not yet stored, or the last segment's largest lag. */
  currentLag(): number {
    const oldest = this.oldestPending();
    return oldest === undefined ? this.lastLag : Math.max(this.lastLag, (performance.now() - oldest) / 1000);
  }
}

export function journalMetrics(s: JournalStats): Metric[] {
  const metrics: Metric[] = [
    gauge(
      "crd_backup_journal_lag_seconds",
      "seconds from an event's receipt to its segment being stored: the oldest event still waiting, else the largest in the last segment stored",
      s.currentLag(),
    ),
    s.lagHistogram.metric(
      "crd_backup_journal_event_lag_seconds",
      "per event, seconds from its receipt to its segment being stored",
    ),
    {
      name: "crd_backup_journal_events_total",
      help: "journal records received (puts, deletes, resyncs, gaps)",
      type: "counter",
      samples: [{ value: s.events }],
    },
    {
      name: "crd_backup_journal_segments_total",
      help: "journal segments stored",
      type: "counter",
      samples: [{ value: s.segments }],
    },
    {
      name: "crd_backup_journal_gaps_total",
      help: "gaps recorded: windows in which intermediate states may be missing",
      type: "counter",
      samples: [{ value: s.gaps }],
    },
    gauge("crd_backup_journal_spool_bytes", "bytes of segments waiting in the local spool", s.spoolBytes),
  ];
  if (s.lastFlush !== undefined) {
    metrics.push(
      gauge(
        "crd_backup_journal_last_flush_timestamp_seconds",
        "when the last journal segment was stored (unix seconds)",
        s.lastFlush,
      ),
    );
  }
  return metrics;
}
