/**
 * Re-encrypting snapshots to a new set of recipients (key rotation, a lost key revoked), in one
 * streamed pass: the stored age file is decrypted, the plain archive verified against the sealed
 * manifest while it is re-encrypted into a new archive beside the old one. Ordering (docs/format.md,
 * "Read and write ordering"): new archive, read back and checked; then the manifest replaced in
 * one atomic write; then the old archive removed. Killed at any point, the manifest names an
 * archive that is whole and verified; what is left over is removed by prune.
 */
import { PassThrough, Readable } from "node:stream";
import { FORMAT_VERSION, newSnapshotId } from "../archive/format.ts";
import { expectedArchive, serializeManifest, type Manifest } from "../archive/manifest.ts";
import { verifyArchive } from "../archive/reader.ts";
import { CrdBackupError } from "../errors.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { manifestKey, snapshotKey } from "../storage/layout.ts";
import { listSnapshots, readManifest } from "../storage/snapshots.ts";
import { openPlainArchive } from "./archive.ts";
import { DigestTap } from "./digest.ts";
import type { Identities, Recipients } from "./keys.ts";
import { openManifest, sealManifest } from "./manifest.ts";
import { encryptForStorage } from "./stream.ts";

export interface RekeyOptions {
  /** The new recipients: the snapshot is encrypted to exactly these afterwards. */
  to: Recipients;
  /** Identities that decrypt the snapshot as it is now. */
  keys: Identities;
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
  /** The old archive, when storage refused to remove it yet (Object Lock), and until when. */
  oldArchiveKept?: { key: string; reason: string };
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
  const stored = await readManifest(storage, id);
  if (!stored.encryption) {
    throw new CrdBackupError(
      "USAGE",
      `snapshot ${id} is not encrypted: rekey changes the recipients of encrypted snapshots`,
      { id },
    );
  }
  const old = stored.encryption;
  if (sameSet(old.recipients, options.to.recipients))
    return { id, outcome: "unchanged", archive: old.stored.key };
  const opened = await openManifest(stored, options.keys);
  const name = `archive.${newSnapshotId(new Date())}.tar.gz.age`;
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
    const readBack = await storedDigest(storage, key, signal);
    if (readBack.sha256 !== written.sha256 || readBack.size !== written.size) {
      throw new CrdBackupError(
        "STORAGE",
        `snapshot ${id}: the new archive ${name} reads back differently from what was written`,
        { id },
      );
    }
    await options.onStep?.("archive-written");

    const plain: Manifest = { ...opened, formatVersion: FORMAT_VERSION, encryption: undefined };
    const next = await sealManifest(plain, options.to, { key: name, ...written });
    // the one write that switches the snapshot over: a whole-object replace, atomic on S3 and local
    await storage.write(manifestKey(id), Readable.from([Buffer.from(serializeManifest(next))]), { signal });
  } catch (e) {
    abort.abort(e);
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
  log.info("snapshot rekeyed", { snapshot: id, archive: name, recipients: options.to.recipients.length });

  try {
    await storage.remove(snapshotKey(id, old.stored.key));
  } catch (e) {
    if (!(e instanceof CrdBackupError && e.code === "LOCKED")) throw e;
    const until = await storage.lockedUntil?.(snapshotKey(id, old.stored.key));
    log.warn("old archive kept: locked", { snapshot: id, until: until?.toISOString() });
    return {
      id,
      outcome: "rekeyed",
      archive: name,
      oldArchiveKept: {
        key: old.stored.key,
        reason: `locked until ${until?.toISOString() ?? "its retention ends"}`,
      },
    };
  }
  return { id, outcome: "rekeyed", archive: name };
}

/** Every encrypted snapshot in storage, oldest first (`rekey --all`). */
export async function encryptedSnapshotIds(storage: StorageBackend): Promise<string[]> {
  return (await listSnapshots(storage)).filter((s) => s.manifest.encryption).map((s) => s.id);
}
