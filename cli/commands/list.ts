import { Command } from "commander";
import { storedArchive } from "../../src/archive/manifest.ts";
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
  });
  return cmd;
}
