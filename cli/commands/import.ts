import { Command } from "commander";
import { CrdBackupError } from "../../src/errors.ts";
import { importable, importVeleroBackup, type ImportResult } from "../../src/import/velero/import.ts";
import {
  backupFile,
  backupInLocation,
  backupNames,
  type VeleroBackup,
  type VeleroBackupInfo,
} from "../../src/import/velero/source.ts";
import type { StorageBackend } from "../../src/storage/backend.ts";
import {
  addCommonOptions,
  addEncryptionOptions,
  addStorageOptions,
  loggerFrom,
  recipientsFrom,
  storageFrom,
  type CommonFlags,
  type EncryptionFlags,
  type StorageFlags,
} from "../options.ts";
import { printJson, printLines } from "../output.ts";
import { addSignOptions, withSignKey, type SignFlags } from "../signing.ts";
import type { RunContext } from "../run.ts";

type Flags = CommonFlags &
  StorageFlags &
  EncryptionFlags &
  SignFlags & { from?: string; fromFile?: string; backup?: string; all?: boolean; clusterUid?: string };

const usage = (message: string) => new CrdBackupError("USAGE", message);

/** The backups the flags name, oldest first for --all (a location lists its backups by name). */
async function backupsFrom(
  flags: Flags,
): Promise<{ backups: () => AsyncGenerator<VeleroBackup>; source?: StorageBackend }> {
  const sources = [flags.from, flags.fromFile].filter((f) => f !== undefined).length;
  if (sources !== 1)
    throw usage("give the Velero backups with --from s3://bucket[/prefix] or --from-file NAME.tar.gz");
  if (flags.fromFile !== undefined) {
    if (flags.backup !== undefined || flags.all)
      throw usage("--backup and --all go with --from, not --from-file");
    const file = flags.fromFile;
    return {
      backups: async function* () {
        yield await backupFile(file);
      },
    };
  }
  if ((flags.backup === undefined) === !flags.all)
    throw usage("with --from, name one --backup NAME or give --all");
  const source = await storageFrom({ ...flags, storage: flags.from });
  const names = flags.all ? await backupNames(source) : [flags.backup!];
  return {
    source,
    backups: async function* () {
      const found: VeleroBackup[] = [];
      for (const name of names) found.push(await backupInLocation(source, name));
      found.sort((a, b) => (a.info.startedAt ?? "").localeCompare(b.info.startedAt ?? ""));
      yield* found;
    },
  };
}

/** A backup --all leaves for later (or for good, if Failed): Velero has not finished it. */
const unfinished = (info: VeleroBackupInfo): string =>
  `Velero backup ${info.name} is ${info.phase}: not imported (only Completed and PartiallyFailed backups are)`;

function describe(r: ImportResult): string {
  const skipped = Object.entries(r.skipped).map(([kind, n]) => `${kind} ${n}`);
  if (r.alreadyImported)
    return `Velero backup ${r.backup.name} was imported before as snapshot ${r.id}: nothing written`;
  const m = r.manifest!;
  const counts = m.sealed
    ? "encrypted"
    : `${m.counts.objects} objects of ${m.resources.length} resources, ${m.counts.crds} CRDs, ${m.counts.namespaces} namespaces`;
  return (
    `Velero backup ${r.backup.name} imported as snapshot ${r.id} (${m.status}): ${counts}` +
    (skipped.length ? `; not custom resources, skipped: ${skipped.join(", ")}` : "")
  );
}

export function importCommand(ctx: RunContext): Command {
  const cmd = new Command("import").description(
    "turn backups written by another tool into crd-backup snapshots",
  );
  const velero = new Command("velero")
    .description(
      "import Velero backups (from its backup storage location, or a downloaded tarball) as snapshots; read with crd-backup's own code, no Velero needed",
    )
    .option(
      "--from <location>",
      "a Velero backup storage location: s3://bucket[/prefix] (the same --s3-* settings as --storage)",
    )
    .option("--from-file <file>", "a downloaded Velero backup tarball, NAME.tar.gz")
    .option("--backup <name>", "the Velero backup to import from --from")
    .option(
      "--all",
      "import every backup in --from not imported yet, oldest first (safe to re-run on a schedule)",
    )
    .option(
      "--cluster-uid <uid>",
      "the cluster the snapshots belong to (default: the backup's kube-system Namespace uid, else one per Velero location)",
    );
  addCommonOptions(addSignOptions(addEncryptionOptions(addStorageOptions(velero)))).action(
    async (flags: Flags) => {
      const { backups } = await backupsFrom(flags);
      const storage = await withSignKey(storageFrom(flags), flags);
      const encryptTo = await recipientsFrom(flags);
      const log = loggerFrom(flags);
      // in the order the backups were taken, imported or not
      const results: (ImportResult | VeleroBackupInfo)[] = [];
      for await (const backup of backups()) {
        // --all runs on a schedule: a Failed or still-finalizing backup must not stop the others
        if (flags.all && !importable(backup.info)) {
          results.push(backup.info);
          if (flags.output === "text") printLines([unfinished(backup.info)]);
          continue;
        }
        const result = await importVeleroBackup(storage, backup, {
          clusterUid: flags.clusterUid,
          encryptTo,
          signal: ctx.signal,
          log,
        });
        results.push(result);
        if (flags.output === "text") printLines([describe(result)]);
      }
      if (flags.output === "json")
        printJson(
          results.map((r) =>
            "id" in r
              ? {
                  backup: r.backup.name,
                  from: r.backup.from,
                  id: r.id,
                  imported: !r.alreadyImported,
                  ...(r.manifest && !r.manifest.sealed
                    ? { status: r.manifest.status, counts: r.manifest.counts }
                    : {}),
                  skipped: r.skipped,
                }
              : { backup: r.name, from: r.from, imported: false, phase: r.phase },
          ),
        );
      else if (results.length === 0) printLines(["no Velero backups found"]);
    },
  );
  return cmd.addCommand(velero);
}
