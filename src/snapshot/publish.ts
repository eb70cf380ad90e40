/**
 * Writing a snapshot into storage, whoever fills it: the archive streams to storage as it is
 * written (through age when encrypting), and the manifest is written last, create-only, so the
 * snapshot exists only once it is complete, and when the storage handle has a signing key never
 * without its signature (of the stored bytes: the sealed manifest when encrypted). On any failure
 * the upload is aborted and nothing is left behind. A snapshot of a cluster (take.ts) and an imported backup (import/) publish alike.
 */
import { ARCHIVE_KEYS, FORMAT_VERSION, encryptedArchiveKey, type ArchiveTotals } from "../archive/format.ts";
import { archiveFields, serializeManifest, type PlainManifest } from "../archive/manifest.ts";
import { ArchiveWriter } from "../archive/writer.ts";
import { encryptForStorage } from "../crypto/stream.ts";
import type { Recipients } from "../crypto/keys.ts";
import { sealManifest } from "../crypto/manifest.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { manifestKey, snapshotKey } from "../storage/layout.ts";
import { storeSignature } from "../signing/stored.ts";

/** The manifest's content, less what publishing knows: the format, the archive and the index. */
export type ManifestContent = Omit<
  PlainManifest,
  "formatVersion" | "archive" | "index" | "counts" | "encryption" | "sealed"
>;

export interface Publication {
  readonly writer: ArchiveWriter;
  /** Aborted when the upload fails, so whoever fills the writer stops at once. */
  readonly signal: AbortSignal;
  /** Finishes the archive, waits for the upload, signs, and writes the manifest create-only. */
  publish(content: ManifestContent): Promise<Published>;
  /** Aborts the writer and the upload; rethrow what it returns (the upload's error, when it failed first). */
  abort(err: unknown): Promise<unknown>;
}

export interface Published {
  /** Opened: an encrypted snapshot's carries its sealed form in `encryption`. */
  manifest: PlainManifest;
  /** What the archive holds, also when the manifest is sealed. */
  totals: ArchiveTotals;
  /** The signing key's fingerprint (SHA256:…) when the manifest was signed. */
  signedBy?: string;
}

export async function openPublication(
  storage: StorageBackend,
  id: string,
  options: { encryptTo?: Recipients | undefined; signal?: AbortSignal | undefined },
): Promise<Publication> {
  const abort = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;
  const writer = new ArchiveWriter(id, { signal });
  // encryption is a stage between the archive writer and storage: the writer never knows
  const encrypted = options.encryptTo ? await encryptForStorage(writer.stream, options.encryptTo) : undefined;
  const archiveKey = encrypted ? encryptedArchiveKey(FORMAT_VERSION) : ARCHIVE_KEYS[FORMAT_VERSION];
  const upload = storage.write(snapshotKey(id, archiveKey), encrypted?.body ?? writer.stream, { signal });
  let uploadFailure: unknown;
  upload.catch((e: unknown) => {
    uploadFailure = e;
    abort.abort(e); // a failed upload stops the producer at once
  });
  return {
    writer,
    signal,
    async publish(content) {
      const totals = await writer.finish();
      await upload;
      const plain: PlainManifest = { ...content, ...archiveFields(totals) };
      const manifest =
        encrypted && options.encryptTo
          ? await sealManifest(plain, options.encryptTo, { key: archiveKey, ...encrypted.stored() })
          : plain;
      const bytes = Buffer.from(serializeManifest(manifest));
      const signedBy = await storeSignature(storage, manifestKey(id), bytes, { signal });
      await storage.createExclusive(manifestKey(id), bytes, { signal });
      return { manifest, totals, ...(signedBy ? { signedBy } : {}) };
    },
    async abort(err) {
      // an upload that failed first stopped the producer, which then fails as cancelled: the
      // upload's error is the one that says why (read before our abort makes the upload fail too)
      const cause = uploadFailure ?? err;
      abort.abort(err);
      await writer.abort(err);
      await upload.catch(() => undefined);
      return cause;
    },
  };
}
