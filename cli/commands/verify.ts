import { Command } from "commander";
import { expectedArchive } from "../../src/archive/manifest.ts";
import { CrdBackupError } from "../../src/errors.ts";
import { verifyArchive } from "../../src/archive/reader.ts";
import { openArchive, resolveSnapshot } from "../../src/storage/snapshots.ts";
import {
  addCommonOptions,
  addStorageOptions,
  storageFrom,
  type CommonFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines } from "../output.ts";

export function verifyCommand(): Command {
  const cmd = new Command("verify")
    .description("check every checksum of a snapshot; exits non-zero naming the first bad entry")
    .argument("<snapshot>", 'a snapshot id, or "latest"');
  addStorageOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (ref: string, flags: CommonFlags & StorageFlags) => {
    const storage = await storageFrom(flags);
    const { id, manifest } = await resolveSnapshot(storage, ref);
    const summary = await verifyArchive(await openArchive(storage, id), expectedArchive(manifest)).catch(
      (e: unknown) => {
        throw e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID"
          ? new CrdBackupError("ARCHIVE_INVALID", `snapshot ${id} is damaged: ${e.message}`, { id })
          : e;
      },
    );
    if (flags.output === "json") {
      printJson({ id, ok: true, ...summary });
    } else {
      printLines([
        `snapshot ${id} ok: ${summary.entries} entries (${summary.crds} CRDs, ${summary.namespaces} namespaces, ` +
          `${summary.objects} objects), ${formatBytes(summary.size)}, sha256 ${summary.sha256}`,
      ]);
    }
  });
  return cmd;
}
