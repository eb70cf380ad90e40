import { gauge, type Metric } from "../report/metrics.ts";
import type { DrillReport } from "./drill.ts";

/** The drill for a terminal: the verdict first, then timings, counts and every reason. */
export function summarizeDrill(report: DrillReport): string[] {
  const t = report.timings;
  const o = report.objects;
  const lines = [
    `drill ${report.drillId} of snapshot ${report.snapshotId}: ${report.result.toUpperCase()}`,
    `target ${report.target.server}${report.target.namespacePrefix ? ` (namespaces prefixed "${report.target.namespacePrefix}")` : ""}`,
    `recovery time ${t.rto}s (restore ${t.restore}s + check ${t.check}s; verify took ${t.verify}s), ${o.perSecond} objects/s`,
    `objects: ${o.expected} expected, ${o.matched} matched, ${o.missing} missing, ${o.changed} differ`,
  ];
  for (const r of report.reasons) lines.push(`  fail: ${r}`);
  for (const p of report.restore.problems)
    lines.push(
      `  ${p.outcome}: ${p.resource} ${p.namespace ? `${p.namespace}/` : ""}${p.name}: ${p.reason ?? ""}`,
    );
  for (const c of report.checks) {
    for (const m of c.missing) lines.push(`  missing: ${c.resource} ${m}`);
    for (const ch of c.changed)
      lines.push(
        `  differs: ${c.resource} ${ch.object}${ch.diff ? ` (${ch.diff.map((d) => d.path).join(", ")})` : ""}`,
      );
  }
  for (const n of report.notDrilled) lines.push(`  not drilled: ${n.resource}: ${n.reason}`);
  if (report.cleanup) {
    const c = report.cleanup;
    lines.push(
      `cleanup: deleted ${c.objects} objects, ${c.namespaces} namespaces, ${c.crds} CRDs in ${t.cleanup}s` +
        (c.heldByFinalizers
          ? `; ${c.heldByFinalizers} objects wait on finalizers (--remove-finalizers clears them)`
          : "") +
        (c.failures.length ? `; ${c.failures.length} failed` : ""),
    );
  }
  return lines;
}

/** The drill's outcome for the Prometheus textfile collector: alert on success == 0 or a stale timestamp. */
export function drillMetrics(report: DrillReport | { result: "fail"; finishedAt: string }): Metric[] {
  const metrics = [
    gauge(
      "crd_backup_drill_success",
      "1 if the last drill passed, 0 if it failed",
      report.result === "pass" ? 1 : 0,
    ),
    gauge(
      "crd_backup_drill_last_run_timestamp_seconds",
      "when the last drill finished (unix seconds)",
      Date.parse(report.finishedAt) / 1000,
    ),
  ];
  if (!("drillId" in report)) return metrics;
  return [
    ...metrics,
    gauge(
      "crd_backup_drill_rto_seconds",
      "time to recover: start of restore to the last object verified",
      report.timings.rto,
    ),
    gauge(
      "crd_backup_drill_step_seconds",
      "seconds per drill step",
      (["verify", "restore", "check", "cleanup"] as const).flatMap((step) => {
        const v = report.timings[step];
        return v === undefined ? [] : [{ labels: { step }, value: v }];
      }),
    ),
    gauge("crd_backup_drill_objects", "objects of the snapshot by what the drill found in the target", [
      { labels: { state: "matched" }, value: report.objects.matched },
      { labels: { state: "missing" }, value: report.objects.missing },
      { labels: { state: "changed" }, value: report.objects.changed },
    ]),
    gauge(
      "crd_backup_drill_not_drilled_resources",
      "resources the drill could not exercise on its target",
      report.notDrilled.length,
    ),
  ];
}
