/**
 * The snapshots and points in time the web view has made browsable, kept on local disk while they
 * are looked at: the first page of a snapshot reads and verifies it once (an encrypted one is
 * decrypted with the storage handle's identities), later pages and objects read the local index.
 * At most `maxOpen` are kept; the least recently used one goes first, never while a request reads it.
 */
import { rm } from "node:fs/promises";
import { expectedArchive } from "../archive/manifest.ts";
import { readArchive, type ArchiveEntry } from "../archive/reader.ts";
import { openPlainArchive } from "../crypto/archive.ts";
import { identitiesFor } from "../crypto/keyring.ts";
import { openManifest } from "../crypto/manifest.ts";
import { CrdBackupError, SourceRefusedError } from "../errors.ts";
import { fetchPointInTime } from "../source/point-in-time.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { resolveSnapshot } from "../storage/snapshots.ts";
import { BrowseIndex, scratchDir } from "./browse-index.ts";

/** A stored snapshot by id, or the state of one cluster at a time (rebuilt from its journal). */
export type BrowseRef = { snapshot: string } | { cluster: string; at: Date };

interface Slot {
  index: Promise<BrowseIndex>;
  users: number;
}

export function refKey(ref: BrowseRef): string {
  return "snapshot" in ref ? ref.snapshot : `${ref.cluster}@${ref.at.toISOString()}`;
}

export class BrowseCache {
  readonly #storage: StorageBackend;
  readonly #maxOpen: number;
  readonly #slots = new Map<string, Slot>();
  #dir: Promise<string> | undefined;

  readonly #tmp: string | undefined;

  /** `tmp`: where the scratch folder goes (the system's temp folder by default). */
  constructor(storage: StorageBackend, maxOpen: number, tmp?: string) {
    this.#storage = storage;
    this.#maxOpen = maxOpen;
    this.#tmp = tmp;
  }

  /** Runs `fn` on the browsable copy of `ref`, building it first when it is not kept. */
  async use<T>(ref: BrowseRef, fn: (index: BrowseIndex) => Promise<T> | T): Promise<T> {
    const key = refKey(ref);
    let slot = this.#slots.get(key);
    if (slot)
      this.#slots.delete(key); // re-inserted below: Map order is recency
    else slot = { index: this.#build(ref), users: 0 };
    this.#slots.set(key, slot);
    slot.users += 1;
    try {
      const index = await slot.index.catch((e: unknown) => {
        // a failed build is not kept: the next request tries again
        if (this.#slots.get(key) === slot) this.#slots.delete(key);
        throw e;
      });
      return await fn(index);
    } finally {
      slot.users -= 1;
      await this.#evict();
    }
  }

  async close(): Promise<void> {
    const slots = [...this.#slots.values()];
    this.#slots.clear();
    for (const s of slots) await s.index.then((i) => i.close()).catch(() => undefined);
    if (this.#dir) await rm(await this.#dir, { recursive: true, force: true });
  }

  async #evict(): Promise<void> {
    for (const [key, slot] of this.#slots) {
      if (this.#slots.size <= this.#maxOpen) return;
      if (slot.users > 0) continue;
      this.#slots.delete(key);
      await slot.index.then((i) => i.close()).catch(() => undefined);
    }
  }

  async #build(ref: BrowseRef): Promise<BrowseIndex> {
    this.#dir ??= scratchDir(this.#tmp);
    const dir = await this.#dir;
    if (!("snapshot" in ref)) {
      await using state = await fetchPointInTime(this.#storage, { at: ref.at, cluster: ref.cluster });
      return BrowseIndex.build(state.manifest, state.entries(), dir);
    }
    const storage = this.#storage;
    const { id, manifest: stored } = await resolveSnapshot(storage, ref.snapshot);
    const keys = identitiesFor(storage);
    const manifest = await openManifest(stored, keys);
    const source = await openPlainArchive(storage, manifest, keys);
    try {
      return await BrowseIndex.build(
        manifest,
        verified(readArchive(source.stream, expectedArchive(manifest)), source.stored),
        dir,
      );
    } catch (e) {
      source.stream.destroy();
      if (e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID") {
        throw new SourceRefusedError({ snapshot: id }, `snapshot ${id}: ${e.message}`, { id }, { cause: e });
      }
      throw e;
    }
  }
}

/** The reader's entries, then the stored (encrypted) file's own digest check once all were read. */
async function* verified(
  entries: AsyncGenerator<ArchiveEntry, unknown>,
  stored: () => unknown,
): AsyncGenerator<ArchiveEntry> {
  yield* entries;
  stored();
}
