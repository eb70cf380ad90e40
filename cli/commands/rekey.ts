import {
  addSignOptions,
  addTrustOptions,
  withSignKey,
  withTrustedSigners,
  type SignFlags,
  type TrustFlags,
} from "../signing.ts";
import { Command } from "commander";
import { CrdBackupError } from "../../src/errors.ts";
import { resolveIdentities } from "../../src/crypto/keys.ts";
import { encryptedSnapshotIds, rekeySnapshot, type RekeyResult } from "../../src/crypto/rekey.ts";
import { resolveSnapshot } from "../../src/storage/snapshots.ts";
import {
  addCommonOptions,
  addEncryptionOptions,
  addIdentityOptions,
  addObjectLockOptions,
  addStorageOptions,
  collect,
  identitiesFrom,
  loggerFrom,
  recipientsFrom,
  storageFrom,
  type CommonFlags,
  type EncryptionFlags,
  type IdentityFlags,
  type ObjectLockFlags,
  type StorageFlags,
} from "../options.ts";
import { printJson, printLines } from "../output.ts";
import type { RunContext } from "../run.ts";

type Flags = CommonFlags &
  StorageFlags &
  EncryptionFlags &
  IdentityFlags &
  ObjectLockFlags &
  SignFlags &
  TrustFlags & { all?: boolean; verifyIdentity?: string[] };

export function rekeyCommand(ctx: RunContext): Command {
  const cmd = new Command("rekey")
    .description(
      "re-encrypt encrypted snapshots to a new set of recipients (key rotation); streamed and verified; the old archive goes only once --verify-identity shows the new one decrypts",
    )
    .argument("[snapshot...]", 'snapshot ids, "latest" or "latest@<cluster uid>"');
  addStorageOptions(cmd);
  addEncryptionOptions(cmd);
  addIdentityOptions(cmd);
  addObjectLockOptions(cmd);
  // the new manifest is signed anew; with --trusted-signers only a snapshot they vouch for is
  addSignOptions(cmd);
  addTrustOptions(cmd);
  addCommonOptions(cmd);
  cmd.option(
    "--verify-identity <file>",
    "an identity of the NEW recipients: decrypt and verify the new archive with it before the manifest names it, then remove the old archive (repeatable; without it the old archive stays until prune's --grace has passed or rekey is run again with this)",
    collect,
  );
  cmd.option("--all", "every encrypted snapshot in storage").action(async (refs: string[], flags: Flags) => {
    if (flags.all === refs.length > 0) {
      throw new CrdBackupError("USAGE", "name the snapshots to rekey, or give --all (not both)");
    }
    const to = await recipientsFrom(flags);
    if (!to)
      throw new CrdBackupError(
        "USAGE",
        "rekey needs the new recipients: --encrypt-to, --encrypt-to-file or $CRD_BACKUP_ENCRYPT_TO",
      );
    const keys = await identitiesFrom(flags);
    const verifyWith = await resolveIdentities(flags.verifyIdentity).catch((e: unknown) => {
      throw e instanceof CrdBackupError
        ? new CrdBackupError(e.code, e.message.replace(/^--identity/, "--verify-identity"))
        : e;
    });
    // --verify-identity alone confirms earlier rekeys (snapshots already at these recipients)
    if (!keys && !verifyWith)
      throw new CrdBackupError(
        "USAGE",
        "rekey needs an identity that decrypts the snapshots now: --identity FILE or $CRD_BACKUP_IDENTITY_FILE",
      );
    const storage = await withTrustedSigners(withSignKey(storageFrom(flags), flags), flags);
    const log = loggerFrom(flags);
    const ids = flags.all
      ? await encryptedSnapshotIds(storage)
      : [...new Set(await Promise.all(refs.map(async (r) => (await resolveSnapshot(storage, r)).id)))];
    const results: RekeyResult[] = [];
    for (const id of ids)
      results.push(await rekeySnapshot(storage, id, { to, keys, verifyWith, signal: ctx.signal, log }));
    if (flags.output === "json") printJson({ recipients: to.recipients, snapshots: results });
    else
      printLines(
        results.map(
          (r) =>
            `${r.id} ${r.outcome === "unchanged" ? "unchanged (already encrypted to exactly these recipients)" : `rekeyed: ${r.archive}`}` +
            (r.verified ? `; verified with --verify-identity` : "") +
            (r.oldArchivesRemoved.length > 0
              ? `; old archive ${r.oldArchivesRemoved.join(", ")} removed`
              : "") +
            (r.oldArchiveKept
              ? `; old archive ${r.oldArchiveKept.key} kept: ${r.oldArchiveKept.reason}`
              : ""),
        ),
      );
  });
  return cmd;
}
