/**
 * Re-encrypting snapshots to a new set of recipients (key rotation, a lost key revoked), in one
 * streamed pass: the stored age file is decrypted, the plain archive verified against the sealed
 * manifest while it is re-encrypted into a new archive beside the old one. Ordering (docs/format.md,
 * "Read and write ordering"): new archive, read back and checked; then the manifest replaced in
 * one atomic write; then the old archive removed. Killed at any point, the manifest names an
 * archive that is whole and verified; what is left over is removed by prune.
 *
 * The old archive goes only once the new one is shown to decrypt: with `verifyWith` (an identity
 * of the new recipients, `rekey --verify-identity`), the stored new archive and its sealed manifest
 * are decrypted with it and verified in full before the manifest is switched, and the old archive
 * is removed after. Without it nothing proves the new recipients' keys work (a typo'd recipient, a
 * key that was never backed up), so the old archive stays: prune removes it past its grace period,
 * or a later `rekey --verify-identity` once the new key has been shown to work.
 */
import { PassThrough, Readable } from "node:stream";
import { ARCHIVE_NAME, encryptedArchiveKey, isSnapshotId, newSnapshotId } from "../archive/format.ts";
import {
  expectedArchive,
  isEncrypted,
  sealedPart,
  serializeManifest,
  type EncryptedManifest,
  type PlainManifest,
} from "../archive/manifest.ts";
import { verifyArchive } from "../archive/reader.ts";
import { CrdBackupError } from "../errors.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { manifestKey, SNAPSHOTS_PREFIX, snapshotKey } from "../storage/layout.ts";
import { listSnapshots, readManifest, readManifestBytes } from "../storage/snapshots.ts";
import {
  checkSignature,
  readSignature,
  signatureKey,
  signerFor,
  storeSignature,
  trustedSignersFor,
} from "../signing/stored.ts";
import { openPlainArchive } from "./archive.ts";
import { DigestTap } from "./digest.ts";
import type { Identities, Recipients } from "./keys.ts";
import { openManifest, sealManifest } from "./manifest.ts";
import { encryptForStorage } from "./stream.ts";

export interface RekeyOptions {
  /** The new recipients: the snapshot is encrypted to exactly these afterwards. */
  to: Recipients;
  /** Identities that decrypt the snapshot as it is now (not needed when it is at `to` already). */
  keys: Identities | undefined;
  /**
   * An identity of the new recipients: the new archive is decrypted with it and verified in full
   * before the manifest names it, and only then is the old archive removed. Without it the old
   * archive is kept (for prune past its grace period, or a later rekey with this option).
   */
  verifyWith?: Identities;
  signal?: AbortSignal;
  log?: Logger;
  /** Called between the steps (tests stop a rekey there). */
  onStep?: (step: "archive-written" | "manifest-replaced") => void | Promise<void>;
}

export interface RekeyResult {
  id: string;
  outcome: "rekeyed" | "unchanged";
  /** The archive the manifest names now. */
  archive: string;
  /** Whether the archive the manifest names was decrypted with `verifyWith` and verified in full. */
  verified: boolean;
  /** Archives the manifest no longer names that were removed (after the verification). */
  oldArchivesRemoved: string[];
  /**
   * The old archive, when it stays in storage: not verified (no `verifyWith`), or storage refused
   * to remove it yet (Object Lock); the reason says which, and what removes it.
   */
  oldArchiveKept?: { key: string; reason: string };
}

/** Why an unverified rekey keeps the old archive, and what removes it (the CLI prints this). */
export const KEPT_UNVERIFIED =
  "not verified with an identity of the new recipients, so it stays until prune removes it past its --grace period, or until rekey --verify-identity is run";

/** An own archive name under `snapshots/<id>/` and the time it was written (an id, sortable as text). */
function archiveTime(id: string, name: string): string | undefined {
  const m = ARCHIVE_NAME.exec(name);
  if (!m) return undefined;
  return m[1] !== undefined && isSnapshotId(m[1]) ? m[1] : id;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** Hashes what storage now holds at `key`: the bytes written must be the bytes stored. */
async function storedDigest(storage: StorageBackend, key: string, signal?: AbortSignal) {
  const tap = new DigestTap();
  for await (const c of (await storage.read(key, { signal })).pipe(tap)) void c;
  return { size: tap.size, sha256: tap.sha256() };
}

export async function rekeySnapshot(
  storage: StorageBackend,
  id: string,
  options: RekeyOptions,
): Promise<RekeyResult> {
  const log = options.log ?? silentLogger;
  const signal = options.signal;
  const { manifest: stored, bytes: storedBytes } = await readManifestBytes(storage, id);
  // with trusted signers, only a snapshot they vouch for is re-signed; without, rekey signs what it
  // verified against its sealed manifest, vouching for the bucket as a first signature does
  if (trustedSignersFor(storage))
    await checkSignature(storage, manifestKey(id), storedBytes, { snapshot: id }, `snapshot ${id}`);
  if (!isEncrypted(stored)) {
    throw new CrdBackupError(
      "USAGE",
      `snapshot ${id} is not encrypted: rekey changes the recipients of encrypted snapshots`,
      { id },
    );
  }
  const old = stored.encryption;
  if (sameSet(old.recipients, options.to.recipients)) {
    // already at these recipients: a rekey done before, now to be confirmed with --verify-identity
    await resignIfNeeded(storage, id, signal);
    if (!options.verifyWith)
      return { id, outcome: "unchanged", archive: old.stored.key, verified: false, oldArchivesRemoved: [] };
    await verifyStored(storage, stored, options.verifyWith, signal);
    const { removed, kept } = await removeSuperseded(storage, id, old.stored.key, log);
    log.info("snapshot verified with the new identity", { snapshot: id, removed: removed.length });
    return {
      id,
      outcome: "unchanged",
      archive: old.stored.key,
      verified: true,
      oldArchivesRemoved: removed,
      ...(kept ? { oldArchiveKept: kept } : {}),
    };
  }
  // a signed snapshot's new manifest needs a new signature: the old one would no longer match
  if (!signerFor(storage) && (await readSignature(storage, manifestKey(id))) !== undefined)
    throw new CrdBackupError(
      "USAGE",
      `snapshot ${id} is signed: give --sign-key FILE (or $CRD_BACKUP_SIGN_KEY_FILE) to sign its new manifest`,
      { id },
    );
  const opened = await openManifest(stored, options.keys);
  const name = encryptedArchiveKey(opened.formatVersion, newSnapshotId(new Date()));
  const key = snapshotKey(id, name);

  // one pass: old age file → plain archive → (verified) and (encrypted to the new recipients → storage)
  const abort = new AbortController();
  const both = signal ? AbortSignal.any([signal, abort.signal]) : abort.signal;
  const source = await openPlainArchive(storage, opened, options.keys, both);
  const toVerify = new PassThrough();
  const toEncrypt = new PassThrough();
  source.stream.on("error", (e) => {
    toVerify.destroy(e);
    toEncrypt.destroy(e);
  });
  source.stream.pipe(toVerify);
  source.stream.pipe(toEncrypt);
  const encrypted = await encryptForStorage(toEncrypt, options.to);
  /** The signature the old manifest had (null: none), once the new one may have replaced it. */
  let oldSignature: string | null | undefined;
  try {
    await Promise.all([
      verifyArchive(toVerify, expectedArchive(opened)).catch((e: unknown) => {
        abort.abort(e);
        throw e;
      }),
      storage.write(key, encrypted.body, { signal: both }),
    ]);
    source.stored(); // the old age file matched its manifest too
    const written = encrypted.stored();
    const plain: PlainManifest = { ...opened, encryption: undefined };
    const next = await sealManifest(plain, options.to, { key: name, ...written });
    if (options.verifyWith) {
      // the stored bytes, decrypted with the new identity and verified in full against the sealed
      // manifest (itself opened with that identity): this also reads back what was written
      await verifyStored(storage, next, options.verifyWith, signal);
    } else {
      const readBack = await storedDigest(storage, key, signal);
      if (readBack.sha256 !== written.sha256 || readBack.size !== written.size) {
        throw new CrdBackupError(
          "STORAGE",
          `snapshot ${id}: the new archive ${name} reads back differently from what was written`,
          { id },
        );
      }
    }
    await options.onStep?.("archive-written");

    // the one write that switches the snapshot over: a whole-object replace, atomic on S3 and local;
    // signed first (with a signing key), so the new manifest is never there without its signature
    const bytes = Buffer.from(serializeManifest(next));
    oldSignature = signerFor(storage) ? ((await readSignature(storage, manifestKey(id))) ?? null) : undefined;
    await storeSignature(storage, manifestKey(id), bytes, { signal, replace: true });
    await storage.write(manifestKey(id), Readable.from([bytes]), { signal });
  } catch (e) {
    abort.abort(e);
    await restoreSignature(storage, id, name, oldSignature);
    // the new archive goes only when the manifest surely still names the old one (a replace that
    // failed on the wire may have happened); otherwise prune removes whichever is left over
    const current = await readManifest(storage, id).catch(() => undefined);
    if (current?.encryption && current.encryption.stored.key !== name)
      await storage.remove(key).catch(() => undefined);
    throw e;
  }
  const now = await readManifest(storage, id);
  if (now.encryption?.stored.key !== name) {
    throw new CrdBackupError(
      "STORAGE",
      `snapshot ${id}: the manifest does not name the new archive after it was written`,
      { id },
    );
  }
  await options.onStep?.("manifest-replaced");
  log.info("snapshot rekeyed", {
    snapshot: id,
    archive: name,
    recipients: options.to.recipients.length,
    verified: options.verifyWith !== undefined,
  });
  const result = { id, outcome: "rekeyed" as const, archive: name };

  if (!options.verifyWith) {
    log.warn("old archive kept: the new archive was not verified with a new identity", {
      snapshot: id,
      archive: old.stored.key,
    });
    return {
      ...result,
      verified: false,
      oldArchivesRemoved: [],
      oldArchiveKept: { key: old.stored.key, reason: KEPT_UNVERIFIED },
    };
  }
  const { removed, kept } = await removeSuperseded(storage, id, name, log);
  return {
    ...result,
    verified: true,
    oldArchivesRemoved: removed,
    ...(kept ? { oldArchiveKept: kept } : {}),
  };
}

/**
 * Decrypts an encrypted snapshot's sealed manifest and stored archive with `identities` and
 * verifies them in full (docs/format.md, "Encryption" and "Verification"), as restore would.
 * A DECRYPT error says the identity is not one of the recipients.
 */
async function verifyStored(
  storage: StorageBackend,
  manifest: EncryptedManifest,
  identities: Identities,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    // opened again from its plain part, with these identities: what a reader of storage would do
    const opened = await openManifest(sealedPart(manifest), identities);
    const source = await openPlainArchive(storage, opened, identities, signal);
    await verifyArchive(source.stream, expectedArchive(opened));
    source.stored();
  } catch (e) {
    throw verifyFailed(manifest.snapshotId, e);
  }
}

function verifyFailed(id: string, e: unknown): unknown {
  if (!(e instanceof CrdBackupError)) return e;
  return new CrdBackupError(
    e.code,
    `snapshot ${id}: --verify-identity: ${e.message}; the snapshot is left as it was`,
    { ...e.context, id },
    { cause: e },
  );
}

/**
 * Removes the archives under `snapshots/<id>/` that the manifest no longer names and that were
 * written before the one it names (the old archives of earlier rekeys; a newer one may belong to
 * a rekey running now, and is prune's to remove). One that storage refuses (Object Lock) stays,
 * reported with the date its lock ends.
 */
async function removeSuperseded(
  storage: StorageBackend,
  id: string,
  current: string,
  log: Logger,
): Promise<{ removed: string[]; kept?: { key: string; reason: string } }> {
  const prefix = `${SNAPSHOTS_PREFIX}${id}/`;
  const currentTime = archiveTime(id, current)!;
  const candidates: string[] = [];
  for await (const { key } of storage.list(prefix)) {
    const name = key.slice(prefix.length);
    const time = archiveTime(id, name);
    if (name !== current && time !== undefined && time < currentTime) candidates.push(name);
  }
  const removed: string[] = [];
  let kept: { key: string; reason: string } | undefined;
  for (const name of candidates) {
    try {
      await storage.remove(snapshotKey(id, name));
      removed.push(name);
      log.info("old archive removed", { snapshot: id, archive: name });
    } catch (e) {
      if (!(e instanceof CrdBackupError && e.code === "LOCKED")) throw e;
      const until = await storage.lockedUntil?.(snapshotKey(id, name));
      log.warn("old archive kept: locked", { snapshot: id, archive: name, until: until?.toISOString() });
      kept = {
        key: name,
        reason: `locked until ${until?.toISOString() ?? "its retention ends"}, prune removes it later`,
      };
    }
  }
  return { removed, ...(kept ? { kept } : {}) };
}

/**
 * After a failed switch: the old manifest gets its own signature back when it surely still names
 * the old archive (a replace that failed on the wire may have happened: then the new signature stays).
 */
async function restoreSignature(
  storage: StorageBackend,
  id: string,
  name: string,
  old: string | null | undefined,
): Promise<void> {
  if (old === undefined) return;
  const current = await readManifest(storage, id).catch(() => undefined);
  if (!current?.encryption || current.encryption.stored.key === name) return;
  const key = signatureKey(manifestKey(id));
  if (old === null) await storage.remove(key).catch(() => undefined);
  else await storage.write(key, Readable.from([Buffer.from(old)])).catch(() => undefined);
}

/**
 * A rekey killed between the signature and the manifest leaves the signature of a manifest that was
 * never written: run again (the snapshot is then "unchanged"), the signing key signs what is there.
 */
async function resignIfNeeded(storage: StorageBackend, id: string, signal: AbortSignal | undefined) {
  if (!signerFor(storage)) return;
  const { bytes } = await readManifestBytes(storage, id);
  const valid = await checkSignature(
    storage,
    manifestKey(id),
    bytes,
    { snapshot: id },
    `snapshot ${id}`,
  ).then(
    (s) => s.signed && s.fingerprint === signerFor(storage)!.fingerprint,
    () => false,
  );
  if (!valid) await storeSignature(storage, manifestKey(id), bytes, { signal, replace: true });
}

/** Every encrypted snapshot in storage, oldest first (`rekey --all`). */
export async function encryptedSnapshotIds(storage: StorageBackend): Promise<string[]> {
  return (await listSnapshots(storage)).filter((s) => s.manifest.encryption).map((s) => s.id);
}
