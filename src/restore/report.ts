import type { FieldChange } from "../diff/json-diff.ts";
import type { ItemModifiers } from "./plan.ts";

/** What happened (or, in a dry run, would happen) to one CRD, namespace or object. */
export type Outcome =
  "created" | "updated" | "unchanged" | "skipped" | "failed" | "conflict" | "would-create" | "would-update";

export interface ReportEntry {
  kind: "crd" | "namespace" | "object";
  /** plural.group for objects, the CRD name for CRDs, "namespaces" for namespaces. */
  resource: string;
  namespace?: string;
  name: string;
  outcome: Outcome;
  /** Why: the server's message for a failure, the policy for a skip, what differs, ... */
  reason?: string;
  /** Changed field paths against the live object (never values), for skips and conflicts. */
  diff?: FieldChange[];
  warnings?: string[];
  /** Resource modifier rules that matched (indexes across the files), the paths they changed, a failing or dropping rule. */
  modifiers?: ItemModifiers;
}

export interface RestoreReport {
  snapshotId: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  status: "success" | "partial" | "failure";
  counts: Record<Outcome, number>;
  entries: ReportEntry[];
}

const OUTCOMES: Outcome[] = [
  "created",
  "updated",
  "unchanged",
  "skipped",
  "failed",
  "conflict",
  "would-create",
  "would-update",
];

export class ReportBuilder {
  private readonly entries: ReportEntry[] = [];
  private readonly startedAt = new Date();
  private readonly snapshotId: string;
  private readonly dryRun: boolean;

  constructor(snapshotId: string, dryRun: boolean) {
    this.snapshotId = snapshotId;
    this.dryRun = dryRun;
  }

  add(entry: ReportEntry): void {
    this.entries.push(entry);
  }

  get failures(): number {
    return this.entries.filter((e) => e.outcome === "failed" || e.outcome === "conflict").length;
  }

  build(): RestoreReport {
    const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
    for (const e of this.entries) counts[e.outcome]++;
    const bad = counts.failed + counts.conflict;
    const good = this.entries.length - bad;
    return {
      snapshotId: this.snapshotId,
      dryRun: this.dryRun,
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      status: bad === 0 ? "success" : good > 0 ? "partial" : "failure",
      counts,
      entries: this.entries,
    };
  }
}

/** A few lines for a terminal: the counts, then every failure and conflict with its reason. */
export function summarize(report: RestoreReport, maxProblems = 20): string[] {
  const c = report.counts;
  const head = report.dryRun
    ? `dry run of restore from ${report.snapshotId}: would create ${c["would-create"]}, would update ${c["would-update"]}, ` +
      `unchanged ${c.unchanged}, skip ${c.skipped}, conflicts ${c.conflict}, invalid ${c.failed}`
    : `restore from ${report.snapshotId} ${report.status}: created ${c.created}, updated ${c.updated}, ` +
      `unchanged ${c.unchanged}, skipped ${c.skipped}, failed ${c.failed}, conflicts ${c.conflict}`;
  const problems = report.entries.filter((e) => e.outcome === "failed" || e.outcome === "conflict");
  const lines = [head];
  for (const e of problems.slice(0, maxProblems)) {
    const where = e.namespace ? `${e.namespace}/${e.name}` : e.name;
    const diff = e.diff?.length ? ` [${e.diff.map((d) => `${d.op} ${d.path}`).join(", ")}]` : "";
    lines.push(`  ${e.outcome}: ${e.resource} ${where}: ${e.reason ?? ""}${diff}`);
  }
  if (problems.length > maxProblems)
    lines.push(`  ... and ${problems.length - maxProblems} more (see --report)`);
  lines.push(...summarizeModifiers(report, maxProblems));
  const warned = report.entries.filter((e) => e.warnings?.length).length;
  if (warned) lines.push(`  ${warned} objects restored with warnings (see --report)`);
  return lines;
}

/** What the resource modifiers did: per object in a dry run (at most `max`), as counts otherwise. */
function summarizeModifiers(report: RestoreReport, max: number): string[] {
  const touched = report.entries.filter((e) => e.modifiers && e.modifiers.failedRule === undefined);
  if (touched.length === 0) return [];
  const dropped = touched.filter((e) => e.modifiers!.droppedBy !== undefined).length;
  const head = `  resource modifiers: ${touched.length} objects matched, ${dropped} of them dropped`;
  if (!report.dryRun) return [`${head} (see --report)`];
  const lines = [head];
  for (const e of touched.slice(0, max)) {
    const m = e.modifiers!;
    const where = e.namespace ? `${e.namespace}/${e.name}` : e.name;
    const what =
      m.droppedBy !== undefined
        ? "dropped"
        : `${m.diff.map((d) => `${d.op} ${d.path}`).join(", ") || "no change"}`;
    const skipped = m.skipped?.length ? ` (rules ${m.skipped.join(", ")} skipped: a test did not hold)` : "";
    lines.push(`  modified: ${e.resource} ${where}: rules ${m.rules.join(", ")}: ${what}${skipped}`);
  }
  if (touched.length > max) lines.push(`  ... and ${touched.length - max} more (see --report)`);
  return lines;
}
