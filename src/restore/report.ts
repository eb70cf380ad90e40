import type { FieldChange } from "../json/diff.ts";
import type { ItemModifiers } from "./decisions.ts";
import { ReportSpool } from "./report-spool.ts";
import type { ResourceVersionReport, VersionMapping } from "./versions.ts";

/**
 * What happened (or, in a dry run, would happen) to one CRD, namespace or object. The last three
 * only a sync reports: `terminating` is a delete that finalizers hold (its reason names them).
 */
export type Outcome =
  | "created"
  | "updated"
  | "unchanged"
  | "skipped"
  | "failed"
  | "conflict"
  | "would-create"
  | "would-update"
  | "deleted"
  | "terminating"
  | "would-delete";

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
  /** The object was written through a --version-map: its apiVersion rewritten from `from` to `to`. */
  versionMap?: VersionMapping;
}

/** The head of a report: everything but the per-object entries. */
export interface ReportSummary {
  snapshotId: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  status: "success" | "partial" | "failure";
  counts: Record<Outcome, number>;
  /** Per resource: the version its objects were archived at against the target's CRD, and the verdict. */
  versions?: ResourceVersionReport[];
}

/** A report as `restore -o json` and `--report` write it. */
export interface RestoreReportDocument extends ReportSummary {
  entries: ReportEntry[];
}

/**
 * What a restore did. The entries are on disk (restore/report-spool.ts), read back with
 * entries(); in memory are the counts and the first KEPT failures and modified objects, which is
 * what summaries and drills need. Dispose of it to remove the spool.
 */
export interface RestoreReport extends ReportSummary, AsyncDisposable {
  /** Failures and conflicts, the first KEPT of them (counts has them all). */
  problems: ReportEntry[];
  /** Objects resource modifiers matched (not those a rule failed on): how many, how many dropped, the first KEPT. */
  modified: { count: number; dropped: number; first: ReportEntry[] };
  /** Objects restored with warnings. */
  warned: number;
  /** Object entries written (or, in a dry run, validated) through a --version-map. */
  mapped: number;
  /** A sync's deletes (done, held by finalizers, or in a dry run planned), the first KEPT of them. */
  deletes: ReportEntry[];
  /** Deletes that finalizers hold, the first KEPT of them (counts has them all). */
  terminating: ReportEntry[];
  /** Every entry in the order it happened: CRDs, namespaces, objects. */
  entries(): AsyncGenerator<ReportEntry>;
}

/** How many problems and modified objects a report keeps in memory for summaries. */
export const KEPT = 1000;

const OUTCOMES: Outcome[] = [
  "created",
  "updated",
  "unchanged",
  "skipped",
  "failed",
  "conflict",
  "would-create",
  "would-update",
  "deleted",
  "terminating",
  "would-delete",
];

const isProblem = (e: ReportEntry) => e.outcome === "failed" || e.outcome === "conflict";
const isDelete = (e: ReportEntry) =>
  e.outcome === "deleted" || e.outcome === "terminating" || e.outcome === "would-delete";
const where = (e: ReportEntry) => (e.namespace ? `${e.namespace}/${e.name}` : e.name);

export class ReportBuilder {
  private readonly spool = new ReportSpool<ReportEntry>();
  private readonly counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  private readonly problems: ReportEntry[] = [];
  private readonly modified = { count: 0, dropped: 0, first: [] as ReportEntry[] };
  private readonly deletes: ReportEntry[] = [];
  private readonly terminating: ReportEntry[] = [];
  private warned = 0;
  private mapped = 0;
  private total = 0;
  private readonly startedAt = new Date();
  private readonly snapshotId: string;
  private readonly dryRun: boolean;
  private readonly versions: ResourceVersionReport[] | undefined;

  constructor(snapshotId: string, dryRun: boolean, versions?: ResourceVersionReport[]) {
    this.snapshotId = snapshotId;
    this.dryRun = dryRun;
    this.versions = versions;
  }

  add(entry: ReportEntry): void {
    this.spool.append(entry);
    this.total++;
    this.counts[entry.outcome]++;
    if (isProblem(entry) && this.problems.length < KEPT) this.problems.push(entry);
    if (entry.modifiers && entry.modifiers.failedRule === undefined) {
      this.modified.count++;
      if (entry.modifiers.droppedBy !== undefined) this.modified.dropped++;
      if (this.modified.first.length < KEPT) this.modified.first.push(entry);
    }
    if (entry.warnings?.length) this.warned++;
    if (entry.versionMap) this.mapped++;
    if (isDelete(entry) && this.deletes.length < KEPT) this.deletes.push(entry);
    if (entry.outcome === "terminating" && this.terminating.length < KEPT) this.terminating.push(entry);
  }

  /** Removes the spool: for a restore that ends in an error, before build(). */
  discard(): void {
    this.spool.remove();
  }

  build(): RestoreReport {
    const bad = this.counts.failed + this.counts.conflict;
    const good = this.total - bad;
    const spool = this.spool;
    return {
      snapshotId: this.snapshotId,
      dryRun: this.dryRun,
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      status: bad === 0 ? "success" : good > 0 ? "partial" : "failure",
      counts: { ...this.counts },
      ...(this.versions ? { versions: this.versions } : {}),
      problems: this.problems,
      modified: this.modified,
      warned: this.warned,
      mapped: this.mapped,
      deletes: this.deletes,
      terminating: this.terminating,
      entries: () => spool.read(),
      [Symbol.asyncDispose]: () => Promise.resolve(spool.remove()),
    };
  }
}

/** The head of a report as it is written out, without what only summaries use. */
export function reportSummary(report: RestoreReport): ReportSummary {
  const { snapshotId, dryRun, startedAt, finishedAt, status, counts, versions } = report;
  return { snapshotId, dryRun, startedAt, finishedAt, status, counts, ...(versions ? { versions } : {}) };
}

/** The whole report in memory, as `-o json` writes it: for tests and small restores. */
export async function reportDocument(report: RestoreReport): Promise<RestoreReportDocument> {
  const entries: ReportEntry[] = [];
  for await (const e of report.entries()) entries.push(e);
  return { ...reportSummary(report), entries };
}

/** A few lines for a terminal: the counts, then every failure and conflict with its reason. */
export function summarize(report: RestoreReport, maxProblems = 20): string[] {
  const c = report.counts;
  const head = report.dryRun
    ? `dry run of restore from ${report.snapshotId}: would create ${c["would-create"]}, would update ${c["would-update"]}, ` +
      `unchanged ${c.unchanged}, skip ${c.skipped}, conflicts ${c.conflict}, invalid ${c.failed}`
    : `restore from ${report.snapshotId} ${report.status}: created ${c.created}, updated ${c.updated}, ` +
      `unchanged ${c.unchanged}, skipped ${c.skipped}, failed ${c.failed}, conflicts ${c.conflict}`;
  const deletes = c.deleted + c.terminating + c["would-delete"];
  const pruned = !deletes
    ? ""
    : report.dryRun
      ? `, would delete ${c["would-delete"]}`
      : `, deleted ${c.deleted}, terminating ${c.terminating}`;
  const problems = report.counts.failed + report.counts.conflict;
  const lines = [head + pruned];
  for (const e of report.problems.slice(0, maxProblems)) {
    const where = e.namespace ? `${e.namespace}/${e.name}` : e.name;
    const diff = e.diff?.length ? ` [${e.diff.map((d) => `${d.op} ${d.path}`).join(", ")}]` : "";
    lines.push(`  ${e.outcome}: ${e.resource} ${where}: ${e.reason ?? ""}${diff}`);
  }
  if (problems > maxProblems) lines.push(`  ... and ${problems - maxProblems} more (see --report)`);
  lines.push(...summarizeDeletes(report, maxProblems));
  lines.push(...summarizeModifiers(report, maxProblems));
  if (report.mapped)
    lines.push(
      `  version map: ${report.mapped} objects ${report.dryRun ? "would be written" : "written"} through a map (see --report)`,
    );
  if (report.warned) lines.push(`  ${report.warned} objects restored with warnings (see --report)`);
  return lines;
}

/**
 * A sync's deletes: first those finalizers hold, each with the finalizers (such a delete is not
 * done), then every other delete, at most `max` of each.
 */
function summarizeDeletes(report: RestoreReport, max: number): string[] {
  const lines: string[] = [];
  const held = report.counts.terminating;
  for (const e of report.terminating.slice(0, max))
    lines.push(`  terminating: ${e.resource} ${where(e)}: ${e.reason ?? ""}`);
  if (held > max) lines.push(`  ... and ${held - max} more terminating (see --report)`);
  const others = report.deletes.filter((e) => e.outcome !== "terminating");
  const count = report.counts.deleted + report.counts["would-delete"];
  for (const e of others.slice(0, max))
    lines.push(`  ${e.outcome}: ${e.resource} ${where(e)}${e.reason ? `: ${e.reason}` : ""}`);
  if (count > max) lines.push(`  ... and ${count - max} more deletes (see --report)`);
  return lines;
}

/** What the resource modifiers did: per object in a dry run (at most `max`), as counts otherwise. */
function summarizeModifiers(report: RestoreReport, max: number): string[] {
  const { count, dropped, first: touched } = report.modified;
  if (count === 0) return [];
  const head = `  resource modifiers: ${count} objects matched, ${dropped} of them dropped`;
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
  if (count > max) lines.push(`  ... and ${count - max} more (see --report)`);
  return lines;
}
