import { Command } from "commander";
import { CrdBackupError } from "../../src/errors.ts";
import { prune, type PruneReport } from "../../src/retention/prune.ts";
import { durationBefore } from "../../src/units/duration.ts";
import {
  addCommonOptions,
  addRetentionOptions,
  addStorageOptions,
  collect,
  loggerFrom,
  retentionFrom,
  storageFrom,
  type CommonFlags,
  type RetentionFlags,
  type StorageFlags,
} from "../options.ts";
import { printJson, printLines } from "../output.ts";

type Flags = CommonFlags &
  StorageFlags &
  RetentionFlags & { cluster?: string[]; dryRun?: boolean; grace: string };

/** One line per cluster, then the snapshots that go (or would go) and why the others stay. */
export function pruneSummary(report: PruneReport): string[] {
  const verb = report.dryRun ? "would remove" : "removed";
  const lines: string[] = [];
  for (const c of report.clusters) {
    // an encrypted snapshot's server is sealed: the uid alone names the cluster
    lines.push(
      `cluster ${c.uid}${c.server ? ` (${c.server})` : ""}: keep ${c.keep.length}, ${verb} ${c.remove.length}`,
    );
    for (const d of c.remove) lines.push(`  ${verb} ${d.id}`);
    const until = new Map(report.locked.map((l) => [l.id, l.until]));
    for (const d of c.keep) {
      const reasons = d.reasons.map((r) => (r === "locked" ? `locked until ${until.get(d.id)}` : r));
      lines.push(`  keep ${d.id} (${reasons.join(", ")})`);
    }
    for (const j of report.chains.filter((x) => x.cluster === c.uid))
      lines.push(
        `  keep the journal of ${j.base} (${j.segments} segments, --at ${j.from.toISOString()} .. ${j.to.toISOString()}): ${j.reasons.join(", ")}`,
      );
  }
  if (report.orphans.length > 0)
    lines.push(`${verb} ${report.orphans.length} unfinished snapshots: ${report.orphans.join(", ")}`);
  for (const j of report.journal)
    lines.push(
      `${verb} the journal of ${j.base} (cluster ${j.cluster}): ${j.segments} segments, its base is not kept`,
    );
  if (report.incompleteWrites > 0) lines.push(`removed ${report.incompleteWrites} unfinished uploads`);
  for (const u of report.unreadable)
    lines.push(`  left alone (unreadable manifest; crd-backup delete ${u.id} removes it): ${u.reason}`);
  return lines;
}

function graceMs(value: string): number {
  const now = new Date();
  try {
    return now.getTime() - durationBefore(value, now).getTime();
  } catch {
    throw new CrdBackupError("USAGE", `--grace "${value}": use a duration like 0h, 6h, 1d`);
  }
}

export function pruneCommand(): Command {
  const cmd = new Command("prune").description(
    "remove snapshots a retention policy does not keep, per cluster (restic-style --keep-* rules)",
  );
  addStorageOptions(cmd);
  addRetentionOptions(cmd);
  addCommonOptions(cmd);
  cmd
    .option("--cluster <uid>", "only this cluster's snapshots (its kube-system uid; repeatable)", collect)
    .option("--dry-run", "list what would be removed; remove nothing")
    .option(
      "--grace <duration>",
      "leftovers of unfinished snapshots (archives without a manifest, open uploads) go once this old; younger ones may be in progress",
      "24h",
    )
    .action(async (flags: Flags) => {
      const policy = retentionFrom(flags);
      if (!policy) {
        throw new CrdBackupError(
          "USAGE",
          "no retention policy: give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within",
        );
      }
      const storage = await storageFrom(flags);
      const report = await prune(storage, {
        policy,
        clusters: flags.cluster,
        dryRun: Boolean(flags.dryRun),
        graceMs: graceMs(flags.grace),
        log: loggerFrom(flags),
      });
      if (flags.output === "json") printJson(report);
      else printLines(pruneSummary(report));
    });
  return cmd;
}
