import { Command } from "commander";
import { expectedArchive } from "../../src/archive/manifest.ts";
import { CrdBackupError } from "../../src/errors.ts";
import { verifyArchive } from "../../src/archive/reader.ts";
import { openPlainArchive, verifyCiphertext } from "../../src/crypto/archive.ts";
import { shortRecipient, openManifest } from "../../src/crypto/manifest.ts";
import { resolveSnapshot } from "../../src/storage/snapshots.ts";
import { manifestKey } from "../../src/storage/layout.ts";
import { checkSignature, type SignatureStatus } from "../../src/signing/stored.ts";
import { addTrustOptions, withTrustedSigners, type TrustFlags } from "../signing.ts";
import {
  addCommonOptions,
  addIdentityOptions,
  addStorageOptions,
  identitiesFrom,
  storageFrom,
  type CommonFlags,
  type IdentityFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines } from "../output.ts";

const damaged = (id: string) => (e: unknown) => {
  throw e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID"
    ? new CrdBackupError("ARCHIVE_INVALID", `snapshot ${id} is damaged: ${e.message}`, { id })
    : e;
};

/** How verify says who signed: the key as ssh-keygen -l prints it, and who trusts it. */
function signatureText(s: SignatureStatus): string {
  if (!s.signed) return "unsigned";
  return (
    `signed by ${s.fingerprint}` + (s.principals.length ? ` (trusted as ${s.principals.join(", ")})` : "")
  );
}

export function verifyCommand(): Command {
  const cmd = new Command("verify")
    .description("check every checksum of a snapshot; exits non-zero naming the first bad entry")
    .argument("<snapshot>", 'a snapshot id, or "latest"');
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  addTrustOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (ref: string, flags: CommonFlags & StorageFlags & IdentityFlags & TrustFlags) => {
    const keys = await identitiesFrom(flags);
    const storage = await withTrustedSigners(storageFrom(flags), flags);
    const { id, manifest: stored, bytes } = await resolveSnapshot(storage, ref);
    // first: a refused signature ends the check before anything else is read
    const signature = await checkSignature(
      storage,
      manifestKey(id),
      bytes,
      { snapshot: id },
      `snapshot ${id}`,
    );
    const signed = signatureText(signature);
    if (stored.sealed && !keys) {
      // without a key only the stored bytes can be checked: say so, never imply more
      const digest = await verifyCiphertext(storage, stored).catch(damaged(id));
      const to = stored.encryption.recipients.map(shortRecipient).join(", ");
      if (flags.output === "json")
        printJson({ id, ok: true, encrypted: true, contentChecked: false, ...digest, signature });
      else
        printLines([
          `snapshot ${id} ciphertext ok: ${formatBytes(digest.size)}, sha256 ${digest.sha256}; content not checked (encrypted to ${to}: give --identity to check every entry); ${signed}`,
        ]);
      return;
    }
    const manifest = await openManifest(stored, keys).catch(damaged(id));
    const source = await openPlainArchive(storage, manifest, keys);
    const summary = await verifyArchive(source.stream, expectedArchive(manifest)).catch(damaged(id));
    const ciphertext = (() => {
      try {
        return source.stored();
      } catch (e) {
        return damaged(id)(e);
      }
    })();
    if (flags.output === "json") {
      printJson({
        id,
        ok: true,
        ...summary,
        ...(ciphertext ? { encrypted: true, contentChecked: true, ciphertext } : {}),
        signature,
      });
    } else {
      printLines([
        `snapshot ${id} ok: ${summary.entries} entries (${summary.crds} CRDs, ${summary.namespaces} namespaces, ` +
          `${summary.objects} objects), ${formatBytes(summary.size)}, sha256 ${summary.sha256}` +
          (ciphertext ? `; encrypted: ${formatBytes(ciphertext.size)}, sha256 ${ciphertext.sha256}` : "") +
          `; ${signed}`,
      ]);
    }
  });
  return cmd;
}
