import { Command } from "commander";
import { storedArchive } from "../../src/archive/manifest.ts";
import { listChains, summarizeChain } from "../../src/journal/chains.ts";
import { listSnapshots } from "../../src/storage/snapshots.ts";
import {
  addCommonOptions,
  addStorageOptions,
  loggerFrom,
  storageFrom,
  type CommonFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines, table } from "../output.ts";

export function listCommand(): Command {
  const cmd = new Command("list").description("list the complete snapshots in storage, oldest first");
  addStorageOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (flags: CommonFlags & StorageFlags) => {
    const storage = await storageFrom(flags);
    const log = loggerFrom(flags);
    const snapshots = await listSnapshots(storage, (id, e) =>
      log.warn("unreadable manifest", { id, error: e.message }),
    );
    // recorded windows (crd-backup record): each chain beside its base snapshot
    const chains = new Map((await listChains(storage)).map((c) => [c.base, summarizeChain(c)]));
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
          cluster: m.cluster,
          toolVersion: m.toolVersion,
          formatVersion: m.formatVersion,
          // an encrypted snapshot's counts and server are sealed: listed as unknown
          ...(m.encryption
            ? { cluster: { uid: m.cluster.uid }, encrypted: true, recipients: m.encryption.recipients }
            : { counts: m.counts }),
          size: storedArchive(m).size,
          ...(chains.has(id) ? { journal: chains.get(id) } : {}),
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
        ["ID", "STATUS", "CLUSTER", "RESOURCES", "OBJECTS", "SIZE", "FINISHED"],
        snapshots.map(({ id, manifest: m }) => [
          id,
          m.status,
          m.cluster.uid.slice(0, 8),
          m.encryption ? "(encrypted)" : m.resources.length,
          m.encryption ? "-" : m.counts.objects,
          formatBytes(storedArchive(m).size),
          m.finishedAt,
        ]),
      ),
    );
    const recorded = [...chains.values()].filter((c) => c.from !== null);
    if (recorded.length === 0) return;
    printLines([
      "",
      ...table(
        ["CLUSTER", "BASE", "FROM", "TO", "SEGMENTS", "GAPS", "RECOVERABLE (--at)"],
        recorded.map((c) => [
          c.cluster.slice(0, 8),
          c.base,
          c.from!,
          c.to,
          c.segments,
          c.gaps.length === 1 ? "1 gap" : `${c.gaps.length} gaps`,
          (c.broken ? [`broken: ${c.broken}`] : c.windows.map((w) => `${w.from} .. ${w.to}`)).join(", "),
        ]),
      ),
    ]);
  });
  return cmd;
}
