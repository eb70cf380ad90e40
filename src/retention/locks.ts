/**
 * Planning around S3 Object Lock: a snapshot any of whose objects storage would refuse to delete
 * is kept whole (removing its manifest while its archive stays would leave neither a snapshot
 * nor a clean removal), and reported with the date its lock ends.
 */
import { ARCHIVE_NAME, MANIFEST_KEY } from "../archive/format.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { manifestKey, SNAPSHOTS_PREFIX } from "../storage/layout.ts";

/** crd-backup's own names under `snapshots/<id>/`: only these are ever removed. */
const isOwnName = (name: string): boolean =>
  name === MANIFEST_KEY || name === `${MANIFEST_KEY}.sig` || ARCHIVE_NAME.test(name);

/** Every key of a snapshot: its manifest and signature, its archive, a leftover archive of an interrupted rekey. */
export async function snapshotKeys(storage: StorageBackend, id: string): Promise<string[]> {
  const keys: string[] = [];
  const prefix = `${SNAPSHOTS_PREFIX}${id}/`;
  for await (const { key } of storage.list(prefix)) {
    if (isOwnName(key.slice(prefix.length))) keys.push(key);
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
