import { Command } from "commander";
import { storedArchive } from "../../src/archive/manifest.ts";
import { listLocation } from "../../src/retention/listing.ts";
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
    const { snapshots, chains, report, retention, rows } = await listLocation(storage, {
      ...(policy ? { policy } : {}),
      onUnreadable: (id, e) => log.warn("unreadable manifest", { id, error: e.message }),
    });
    for (const c of chains.values()) {
      if (c.from === null)
        log.warn("journal without its base snapshot", { cluster: c.cluster, base: c.base });
    }
    if (flags.output === "json") {
      printJson(rows);
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
