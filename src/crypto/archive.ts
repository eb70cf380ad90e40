/**
 * Reading an encrypted snapshot's archive: the stored age file is hashed as it streams (its
 * SHA-256 and size must match the manifest) and decrypted into the plain archive that
 * docs/format.md describes, which the caller then verifies as it verifies any archive.
 */
import { createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isEncrypted, type EncryptedManifest, type PlainManifest } from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { snapshotKey } from "../storage/layout.ts";
import { DigestTap } from "./digest.ts";
import type { Identities } from "./keys.ts";
import { needsIdentity } from "./manifest.ts";
import { decryptStream } from "./stream.ts";

function mismatch(m: EncryptedManifest, what: string): CrdBackupError {
  return new CrdBackupError(
    "ARCHIVE_INVALID",
    `snapshot ${m.snapshotId}: the stored archive's ${what} does not match the manifest`,
    { id: m.snapshotId },
  );
}

function checkStored(m: EncryptedManifest, tap: DigestTap): { size: number; sha256: string } {
  const stored = m.encryption.stored;
  const sha256 = tap.sha256();
  if (tap.size !== stored.size) throw mismatch(m, `size (${tap.size} bytes, manifest ${stored.size})`);
  if (sha256 !== stored.sha256) throw mismatch(m, "SHA-256");
  return { size: tap.size, sha256 };
}

async function openStored(
  storage: StorageBackend,
  m: EncryptedManifest,
  signal?: AbortSignal,
): Promise<DigestTap> {
  const source = await storage.read(snapshotKey(m.snapshotId, m.encryption.stored.key), { signal });
  const tap = new DigestTap();
  source.on("error", (e) => tap.destroy(e));
  return source.pipe(tap);
}

/**
 * The plain archive of an encrypted snapshot (its manifest opened), decrypted to `file`. Damage
 * anywhere in the stored bytes fails here, before the plain archive is used.
 */
export async function fetchDecrypted(
  storage: StorageBackend,
  m: EncryptedManifest,
  keys: Identities | undefined,
  file: string,
  signal?: AbortSignal,
): Promise<void> {
  if (!keys) throw needsIdentity(m);
  const tap = await openStored(storage, m, signal);
  const plain = await decryptStream(tap, keys, "the stored archive");
  await pipeline(plain, createWriteStream(file), { signal });
  checkStored(m, tap);
}

/** The plain archive streamed from storage (decrypted when encrypted), for one pass of reading. */
export async function openPlainArchive(
  storage: StorageBackend,
  m: PlainManifest,
  keys: Identities | undefined,
  signal?: AbortSignal,
): Promise<{ stream: Readable; stored: () => { size: number; sha256: string } | undefined }> {
  if (!isEncrypted(m)) {
    return {
      stream: await storage.read(snapshotKey(m.snapshotId, m.archive.key), { signal }),
      stored: () => undefined,
    };
  }
  if (!keys) throw needsIdentity(m);
  const tap = await openStored(storage, m, signal);
  const stream = await decryptStream(tap, keys, "the stored archive");
  return { stream, stored: () => checkStored(m, tap) };
}

/** Without a key: the stored age file's SHA-256 and size against the manifest (content unchecked). */
export async function verifyCiphertext(
  storage: StorageBackend,
  m: EncryptedManifest,
  signal?: AbortSignal,
): Promise<{ size: number; sha256: string }> {
  const tap = await openStored(storage, m, signal);
  for await (const chunk of tap) void chunk;
  return checkStored(m, tap);
}
