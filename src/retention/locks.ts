/**
 * Planning around S3 Object Lock: a snapshot any of whose objects storage would refuse to delete
 * is kept whole (removing its manifest while its archive stays would leave neither a snapshot
 * nor a clean removal), and reported with the date its lock ends.
 */
import type { StorageBackend } from "../storage/backend.ts";
import { manifestKey, SNAPSHOTS_PREFIX } from "../storage/layout.ts";

/** crd-backup's own names under `snapshots/<id>/`: only these are ever removed. */
const OWN_NAME = /^(manifest\.json(\.sig)?|archive(\.[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})?\.tar\.gz(\.age)?)$/;

/** Every key of a snapshot: its manifest and signature, its archive, a leftover archive of an interrupted rekey. */
export async function snapshotKeys(storage: StorageBackend, id: string): Promise<string[]> {
  const keys: string[] = [];
  const prefix = `${SNAPSHOTS_PREFIX}${id}/`;
  for await (const { key } of storage.list(prefix)) {
    if (OWN_NAME.test(key.slice(prefix.length))) keys.push(key);
  }
  return keys;
}

/** The latest retain-until date of any of the snapshot's objects, or undefined if none is locked. */
export async function snapshotLockedUntil(storage: StorageBackend, id: string): Promise<Date | undefined> {
  if (!storage.lockedUntil) return undefined;
  let latest: Date | undefined;
  for (const key of await snapshotKeys(storage, id)) {
    const until = await storage.lockedUntil(key);
    if (until && (!latest || until > latest)) latest = until;
  }
  return latest;
}

/**
 * Manifest first: from then on the snapshot is not listed, and what is left (its archive) is an
 * orphan that the next prune removes.
 */
export async function removeSnapshotKeys(storage: StorageBackend, id: string): Promise<void> {
  await storage.remove(manifestKey(id));
  for (const key of await snapshotKeys(storage, id)) await storage.remove(key);
}
