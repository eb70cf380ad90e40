/**
 * Sealing and opening an encrypted snapshot's manifest (docs/format.md, "Encryption"). The sealed
 * part is the version-1 manifest of the plain archive; once opened and checked against the plain
 * part, the rest of crd-backup sees a PlainManifest whose archive is the plain archive (and whose
 * `encryption` says how it is stored).
 */
import {
  parseManifest,
  serializeManifest,
  type ManifestEncryption,
  type PlainManifest,
  type StoredManifest,
} from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import type { Identities, Recipients } from "./keys.ts";
import { openSealedText, sealText } from "./stream.ts";

/** A recipient shortened for a one-line message (post-quantum ones run to 2,000 characters). */
export function shortRecipient(r: string): string {
  return r.length > 24 ? `${r.slice(0, 14)}…${r.slice(-6)}` : r;
}

/** The manifest to store for `plain` (the version-1 manifest of the plain archive), encrypted. */
export async function sealManifest(
  plain: PlainManifest,
  to: Recipients,
  stored: ManifestEncryption["stored"],
): Promise<PlainManifest & { encryption: ManifestEncryption }> {
  const sealed = await sealText(serializeManifest({ ...plain, encryption: undefined }), to);
  return { ...plain, encryption: { scheme: "age", recipients: to.recipients, stored, sealed } };
}

/** Fails with one line naming the recipients: content was asked for and no key was given. */
export function needsIdentity(m: StoredManifest): CrdBackupError {
  const to = m.encryption?.recipients ?? [];
  return new CrdBackupError(
    "DECRYPT",
    `snapshot ${m.snapshotId} is encrypted to ${to.map(shortRecipient).join(", ")}: give --identity FILE (or $CRD_BACKUP_IDENTITY_FILE) with the key of one of them`,
    { id: m.snapshotId },
  );
}

/**
 * The full manifest of an encrypted snapshot: `sealed` decrypted, parsed as a version-1 manifest,
 * and checked against the plain part (an attacker who can write must not pair one snapshot's
 * plain part with another's sealed one unnoticed). A plain manifest (unencrypted, or opened
 * already) is returned as it is.
 */
export async function openManifest(m: StoredManifest, keys: Identities | undefined): Promise<PlainManifest> {
  if (!m.sealed) return m;
  const e = m.encryption;
  if (!keys) throw needsIdentity(m);
  const text = await openSealedText(e.sealed, keys, `snapshot ${m.snapshotId}'s manifest`).catch(
    (err: unknown) => {
      if (err instanceof CrdBackupError && err.code === "DECRYPT") {
        const to = e.recipients.map(shortRecipient).join(", ");
        throw new CrdBackupError(
          "DECRYPT",
          `snapshot ${m.snapshotId} is encrypted to ${to}: none of the identities in ${keys.sources.join(", ")} is one of them`,
          { id: m.snapshotId },
        );
      }
      throw err;
    },
  );
  const inner = parseManifest(text);
  for (const [field, a, b] of [
    ["snapshotId", inner.snapshotId, m.snapshotId],
    ["status", inner.status, m.status],
    ["startedAt", inner.startedAt, m.startedAt],
    ["finishedAt", inner.finishedAt, m.finishedAt],
    ["cluster.uid", inner.cluster.uid, m.cluster.uid],
  ] as const) {
    if (a !== b) {
      throw new CrdBackupError(
        "ARCHIVE_INVALID",
        `snapshot ${m.snapshotId}: the sealed manifest's ${field} is ${a}, the plain one's ${b}`,
        { id: m.snapshotId },
      );
    }
  }
  if (inner.sealed)
    throw new CrdBackupError(
      "ARCHIVE_INVALID",
      `snapshot ${m.snapshotId}: the sealed manifest is itself encrypted`,
    );
  return { ...inner, encryption: e }; // keeps the archive's format version; the envelope's is sealedPart's
}
