import { Command } from "commander";
import { storedArchive } from "../../src/archive/manifest.ts";
import { listChains, summarizeChain, type ChainSummary } from "../../src/journal/chains.ts";
import { prune, type PruneReport } from "../../src/retention/prune.ts";
import { listSnapshots } from "../../src/storage/snapshots.ts";
import {
  addCommonOptions,
  addRetentionOptions,
  addStorageOptions,
  loggerFrom,
  retentionFrom,
  storageFrom,
  type CommonFlags,
  type RetentionFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines, table } from "../output.ts";

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

export function listCommand(): Command {
  const cmd = new Command("list").description(
    "list the complete snapshots and recorded journals in storage, oldest first; with --keep-* rules, what prune would keep and why",
  );
  addStorageOptions(cmd);
  addRetentionOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (flags: CommonFlags & StorageFlags & RetentionFlags) => {
    const storage = await storageFrom(flags);
    const policy = retentionFrom(flags);
    const log = loggerFrom(flags);
    const snapshots = await listSnapshots(storage, (id, e) =>
      log.warn("unreadable manifest", { id, error: e.message }),
    );
    // recorded windows (crd-backup record): each chain beside its base snapshot
    const chains = new Map((await listChains(storage)).map((c) => [c.base, summarizeChain(c)]));
    const report = policy ? await prune(storage, { policy, dryRun: true, graceMs: 0 }) : undefined;
    const retention = retentionColumn(report, [...chains.values()]);
    for (const c of chains.values()) {
      if (c.from === null)
        log.warn("journal without its base snapshot", { cluster: c.cluster, base: c.base });
    }
    if (flags.output === "json") {
      printJson(
        snapshots.map(({ id, manifest: m }) => ({
          id,
          status: m.status,
          startedAt: m.startedAt,
          finishedAt: m.finishedAt,
          // an encrypted snapshot's counts and server are sealed: its cluster is its uid alone
          cluster: m.cluster,
          toolVersion: m.toolVersion,
          formatVersion: m.formatVersion,
          ...(m.sealed ? { encrypted: true, recipients: m.encryption.recipients } : { counts: m.counts }),
          size: storedArchive(m).size,
          ...(chains.has(id)
            ? { journal: { ...chains.get(id)!, retention: retention.chain(chains.get(id)!) } }
            : {}),
          ...(report ? { retention: retention.snapshot(id) } : {}),
        })),
      );
      return;
    }
    if (snapshots.length === 0) {
      printLines([`no snapshots in ${storage.location}`]);
      return;
    }
    printLines(
      table(
        [
          "ID",
          "STATUS",
          "CLUSTER",
          "RESOURCES",
          "OBJECTS",
          "SIZE",
          "FINISHED",
          ...(report ? ["RETENTION"] : []),
        ],
        snapshots.map(({ id, manifest: m }) => [
          id,
          m.status,
          m.cluster.uid.slice(0, 8),
          m.sealed ? "(encrypted)" : m.resources.length,
          m.sealed ? "-" : m.counts.objects,
          formatBytes(storedArchive(m).size),
          m.finishedAt,
          ...(report ? [retention.snapshot(id)] : []),
        ]),
      ),
    );
    const recorded = [...chains.values()].filter((c) => c.from !== null);
    if (recorded.length === 0) return;
    printLines([
      "",
      ...table(
        ["CLUSTER", "BASE", "FROM", "TO", "SEGMENTS", "GAPS", "RECOVERABLE (--at)", "RETENTION"],
        recorded.map((c) => [
          c.cluster.slice(0, 8),
          c.base,
          c.from!,
          c.to,
          c.segments,
          c.gaps.length === 1 ? "1 gap" : `${c.gaps.length} gaps`,
          (c.broken ? [`broken: ${c.broken}`] : c.windows.map((w) => `${w.from} .. ${w.to}`)).join(", "),
          retention.chain(c),
        ]),
      ),
    ]);
  });
  return cmd;
}
