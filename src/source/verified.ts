import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { expectedArchive, isEncrypted, type PlainManifest } from "../archive/manifest.ts";
import { readArchive, type ArchiveEntry } from "../archive/reader.ts";
import { fetchDecrypted } from "../crypto/archive.ts";
import { identitiesFor } from "../crypto/keyring.ts";
import { openManifest } from "../crypto/manifest.ts";
import { CrdBackupError, SourceRefusedError } from "../errors.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { manifestKey } from "../storage/layout.ts";
import { openArchive, resolveSnapshot } from "../storage/snapshots.ts";
import { checkSignature, type SignatureStatus } from "../signing/stored.ts";

/** The local copy of an archive, whatever its format version (the reader tells gzip from zstd). */
export const LOCAL_ARCHIVE = "archive";

/**
 * Sees every entry of the verification pass, given the manifest before it starts (undefined: no
 * visit). A caller that would otherwise read every entry once more before its first write does its
 * work here; what it gathered counts only once the snapshot is returned (the whole archive verified).
 */
export type EntryVisitor = (
  manifest: PlainManifest,
) => EntrySeen | undefined | Promise<EntrySeen | undefined>;
export interface EntrySeen {
  /** A promise holds the pass until it settles (a visitor that waits for what it needs). */
  (entry: ArchiveEntry): void | Promise<void>;
  /** The pass failed (or never ran): whatever waits on entries still to come must settle now. */
  abandon?: (reason: unknown) => void;
}

/** Tells a visitor its pass will not go on, once it exists (the download may fail before). */
function abandon(seen: Promise<EntrySeen | undefined>, reason: unknown): void {
  seen.then(
    (s) => s?.abandon?.(reason),
    () => undefined,
  );
}

/**
 * The one verified source of entries every reader of a backup uses (restore, diff, export, drill,
 * modifiers test). It sits below both its producers and its users: a stored snapshot is fetched
 * here, a point in time is rebuilt by journal/replay into a local archive and handed over with
 * fromLocalArchive, and source/open.ts picks between them for the commands.
 *
 * A snapshot fetched to a local temp file and verified end to end (format version, every entry
 * hash, the index, the whole-archive digest) before anything is written to a cluster. Later passes
 * re-read the local copy, so storage is read once and memory never holds the archive.
 *
 * Its manifest is a PlainManifest: an encrypted snapshot's is opened before it is fetched, so its
 * users read resources and counts as they would of any snapshot.
 *
 * The manifest's signature (`manifest.json.sig`) is checked first, on the exact bytes parsed, before
 * anything else is read: with trusted signers attached to the storage handle, an unsigned snapshot
 * or one signed by another key is a SourceRefusedError; a signature that does not match is one
 * always. The manifest names the archive's SHA-256, so a signed manifest covers the archive too.
 */
export class VerifiedSnapshot implements AsyncDisposable {
  readonly id: string;
  readonly manifest: PlainManifest;
  /** The stored manifest's signature; undefined for a state rebuilt here (its base and segments were checked). */
  readonly signature: SignatureStatus | undefined;
  private readonly file: string;
  private readonly dir: string;

  private constructor(id: string, manifest: PlainManifest, dir: string, signature?: SignatureStatus) {
    this.id = id;
    this.manifest = manifest;
    this.signature = signature;
    this.dir = dir;
    this.file = path.join(dir, LOCAL_ARCHIVE);
  }

  /**
   * Downloads the snapshot (an id, "latest" or "latest@<uid>") and verifies every byte of it;
   * an archive that fails is a SourceRefusedError (ARCHIVE_INVALID), thrown before anything is
   * returned: the caller says what it therefore did not do.
   */
  static async fetch(
    storage: StorageBackend,
    ref: string,
    signal?: AbortSignal,
    visit?: EntryVisitor,
  ): Promise<VerifiedSnapshot> {
    const { id, manifest, signature } = await VerifiedSnapshot.#open(storage, ref);
    const dir = await mkdtemp(path.join(os.tmpdir(), "crd-backup-restore-"));
    const snapshot = new VerifiedSnapshot(id, manifest, dir, signature);
    // the visitor's own round trips (restore's probes of the target) run while the archive downloads
    const seen = Promise.resolve(visit?.(manifest));
    seen.catch(() => undefined); // awaited below; a failed download must not leave it unhandled
    try {
      if (isEncrypted(manifest)) {
        await fetchDecrypted(storage, manifest, identitiesFor(storage), snapshot.file, signal);
      } else {
        await pipeline(
          await openArchive(storage, id, manifest.formatVersion, signal),
          createWriteStream(snapshot.file),
          { signal },
        );
      }
      await snapshot.verify(await seen);
    } catch (e) {
      abandon(seen, e);
      await snapshot[Symbol.asyncDispose]();
      if (e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID") {
        throw new SourceRefusedError({ snapshot: id }, `snapshot ${id}: ${e.message}`, { id }, { cause: e });
      }
      throw e;
    }
    return snapshot;
  }

  /**
   * The entries of a stored snapshot read once, straight from storage, each checked as it streams
   * (readArchive: format version, entry hashes, the index, the whole-archive digest at the end):
   * for a reader that only gathers (changes), reads to the end, and MUST discard what it gathered
   * if this throws. Half the work of fetch and entries(), which read the archive twice. An
   * encrypted snapshot is fetched (decrypted to a temp file) as fetch does.
   */
  static async *stream(
    storage: StorageBackend,
    ref: string,
    signal?: AbortSignal,
  ): AsyncGenerator<ArchiveEntry> {
    const { id, manifest } = await VerifiedSnapshot.#open(storage, ref);
    if (isEncrypted(manifest)) {
      await using snapshot = await VerifiedSnapshot.fetch(storage, ref, signal);
      yield* snapshot.entries();
      return;
    }
    try {
      yield* readArchive(
        await openArchive(storage, id, manifest.formatVersion, signal),
        expectedArchive(manifest),
      );
    } catch (e) {
      if (e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID")
        throw new SourceRefusedError({ snapshot: id }, `snapshot ${id}: ${e.message}`, { id }, { cause: e });
      throw e;
    }
  }

  /** The snapshot's id, its manifest (opened if encrypted) and its signature, checked before anything else. */
  static async #open(
    storage: StorageBackend,
    ref: string,
  ): Promise<{ id: string; manifest: PlainManifest; signature: SignatureStatus }> {
    const resolved = await resolveSnapshot(storage, ref);
    const id = resolved.id;
    const signature = await checkSignature(
      storage,
      manifestKey(id),
      resolved.bytes,
      { snapshot: id },
      `snapshot ${id}`,
    );
    // an encrypted snapshot: its manifest opened with the storage handle's identities (or one
    // line naming its recipients), its archive decrypted after; nothing after this knows
    return { id, manifest: await openManifest(resolved.manifest, identitiesFor(storage)), signature };
  }

  /** An archive written locally (`<dir>/archive`), verified against its manifest; owns `dir` from then on. */
  static async fromLocalArchive(
    manifest: PlainManifest,
    dir: string,
    visit?: EntryVisitor,
  ): Promise<VerifiedSnapshot> {
    const snapshot = new VerifiedSnapshot(manifest.snapshotId, manifest, dir);
    const seen = (async () => visit?.(manifest))(); // a visitor that throws fails the pass below
    seen.catch(() => undefined); // awaited below
    try {
      await snapshot.verify(await seen);
    } catch (e) {
      abandon(seen, e);
      await snapshot[Symbol.asyncDispose]();
      throw e;
    }
    return snapshot;
  }

  /** Every byte of the local copy checked against the manifest (the reader throws on the first fault). */
  private async verify(seen: EntrySeen | undefined): Promise<void> {
    for await (const entry of readArchive(createReadStream(this.file), expectedArchive(this.manifest))) {
      const waited = seen?.(entry);
      if (waited) await waited;
    }
  }

  /** The verified entries again, from the local copy (whose every body verify() parsed whole). */
  async *entries(): AsyncGenerator<ArchiveEntry> {
    yield* readArchive(createReadStream(this.file), expectedArchive(this.manifest), { reread: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
