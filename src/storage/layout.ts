import {
  ARCHIVE_KEYS,
  FORMAT_VERSION,
  isSnapshotId,
  MANIFEST_KEY,
  type ArchiveVersion,
} from "../archive/format.ts";

export { isSnapshotId, newSnapshotId } from "../archive/format.ts";

/**
 * Every key crd-backup reads or writes in storage, in one place (docs/format.md, "Storage
 * layout"). A snapshot is complete exactly when its manifest exists: the archive goes first.
 */
export const SNAPSHOTS_PREFIX = "snapshots/";

/** A plain snapshot's archive key; its name depends on the snapshot's format version. */
export function archiveKey(id: string, version: ArchiveVersion = FORMAT_VERSION): string {
  return `${SNAPSHOTS_PREFIX}${id}/${ARCHIVE_KEYS[version]}`;
}

export function manifestKey(id: string): string {
  return `${SNAPSHOTS_PREFIX}${id}/${MANIFEST_KEY}`;
}

/** A key under `snapshots/<id>/`, e.g. an encrypted snapshot's archive (its name is in the manifest). */
export function snapshotKey(id: string, name: string): string {
  return `${SNAPSHOTS_PREFIX}${id}/${name}`;
}

/** The snapshot id a manifest key belongs to, or undefined for any other key. */
export function snapshotIdOfManifest(key: string): string | undefined {
  const m = /^snapshots\/([^/]+)\/manifest\.json$/.exec(key);
  return m && isSnapshotId(m[1]!) ? m[1] : undefined;
}
