import { Command } from "commander";
import { deleteSnapshots } from "../../src/retention/delete.ts";
import {
  addCommonOptions,
  addStorageOptions,
  loggerFrom,
  storageFrom,
  type CommonFlags,
  type StorageFlags,
} from "../options.ts";
import { printJson, printLines } from "../output.ts";

type Flags = CommonFlags & StorageFlags & { dryRun?: boolean; allowLast?: boolean };

export function deleteCommand(): Command {
  const cmd = new Command("delete")
    .description(
      "delete snapshots by id (manifest first, like prune); refuses to delete a cluster's last complete snapshot unless --allow-last",
    )
    .argument("<snapshot...>", 'snapshot ids, "latest" or "latest@<cluster uid>"');
  addStorageOptions(cmd);
  addCommonOptions(cmd);
  cmd
    .option("--dry-run", "say what would be deleted; delete nothing")
    .option("--allow-last", "also delete the last complete snapshot of a cluster")
    .action(async (refs: string[], flags: Flags) => {
      const storage = await storageFrom(flags);
      const report = await deleteSnapshots(storage, refs, {
        dryRun: Boolean(flags.dryRun),
        allowLast: Boolean(flags.allowLast),
        log: loggerFrom(flags),
      });
      if (flags.output === "json") printJson(report);
      else {
        const verb = report.dryRun ? "would delete" : "deleted";
        printLines([
          ...report.removed.map(
            (r) => `${verb} ${r.id} (${r.status}${r.cluster ? `, cluster ${r.cluster}` : ""})`,
          ),
          ...report.locked.map((l) => `kept ${l.id}: locked until ${l.until} (S3 Object Lock)`),
        ]);
      }
    });
  return cmd;
}
