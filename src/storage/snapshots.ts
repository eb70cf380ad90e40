import { parseManifest, type Manifest } from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import { readAll, type StorageBackend } from "./backend.ts";
import { archiveKey, isSnapshotId, manifestKey, SNAPSHOTS_PREFIX, snapshotIdOfManifest } from "./layout.ts";

/** A snapshot as storage lists it: complete (its manifest exists), with that manifest. */
export interface StoredSnapshot {
  id: string;
  manifest: Manifest;
}

export async function readManifest(storage: StorageBackend, id: string): Promise<Manifest> {
  const text = (await readAll(await storage.read(manifestKey(id)))).toString("utf8");
  const manifest = parseManifest(text);
  if (manifest.snapshotId !== id) {
    throw new CrdBackupError(
      "ARCHIVE_INVALID",
      `snapshot ${id}: its manifest names snapshot ${manifest.snapshotId}`,
      { id },
    );
  }
  return manifest;
}

/**
 * Every snapshot with a manifest, oldest first. Archives without a manifest are unfinished or
 * abandoned snapshots and are not listed; a manifest that cannot be read is reported, not skipped.
 */
export async function listSnapshots(
  storage: StorageBackend,
  onUnreadable: (id: string, error: Error) => void = (id, e) => {
    throw new CrdBackupError("ARCHIVE_INVALID", `snapshot ${id}: ${e.message}`, { id });
  },
): Promise<StoredSnapshot[]> {
  const ids: string[] = [];
  for await (const { key } of storage.list(SNAPSHOTS_PREFIX)) {
    const id = snapshotIdOfManifest(key);
    if (id) ids.push(id);
  }
  ids.sort();
  const out: StoredSnapshot[] = [];
  for (const id of ids) {
    try {
      out.push({ id, manifest: await readManifest(storage, id) });
    } catch (e) {
      onUnreadable(id, e as Error);
    }
  }
  return out;
}

/** Resolves `latest` or a full snapshot id to a complete snapshot. */
export async function resolveSnapshot(storage: StorageBackend, ref: string): Promise<StoredSnapshot> {
  if (ref === "latest") {
    let latest: string | undefined;
    for await (const { key } of storage.list(SNAPSHOTS_PREFIX)) {
      const id = snapshotIdOfManifest(key);
      if (id && (latest === undefined || id > latest)) latest = id;
    }
    if (!latest) throw new CrdBackupError("NOT_FOUND", `no complete snapshot in ${storage.location}`);
    return { id: latest, manifest: await readManifest(storage, latest) };
  }
  if (!isSnapshotId(ref)) {
    throw new CrdBackupError(
      "USAGE",
      `"${ref}" is not a snapshot id (like 20261122T041500Z-1a2b3c4d) or "latest"`,
    );
  }
  try {
    return { id: ref, manifest: await readManifest(storage, ref) };
  } catch (e) {
    if (e instanceof CrdBackupError && e.code === "NOT_FOUND") {
      throw new CrdBackupError(
        "NOT_FOUND",
        `snapshot ${ref} does not exist (or is incomplete) in ${storage.location}`,
        {
          id: ref,
        },
      );
    }
    throw e;
  }
}

export function openArchive(storage: StorageBackend, id: string, signal?: AbortSignal) {
  return storage.read(archiveKey(id), { signal });
}
