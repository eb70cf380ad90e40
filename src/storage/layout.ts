import { randomBytes } from "node:crypto";

/**
 * Every key crd-backup reads or writes in storage, in one place (docs/format.md, "Storage
 * layout"). A snapshot is complete exactly when its manifest exists: the archive goes first.
 */
export const SNAPSHOTS_PREFIX = "snapshots/";
const ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

export function archiveKey(id: string): string {
  return `${SNAPSHOTS_PREFIX}${id}/archive.tar.gz`;
}

export function manifestKey(id: string): string {
  return `${SNAPSHOTS_PREFIX}${id}/manifest.json`;
}

export function snapshotPrefix(id: string): string {
  return `${SNAPSHOTS_PREFIX}${id}/`;
}

/** `YYYYMMDDTHHMMSSZ-<8 hex>`: sorts by time as a string; the random part keeps parallel runs apart. */
export function newSnapshotId(now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
  return `${stamp}-${randomBytes(4).toString("hex")}`;
}

export function isSnapshotId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** The snapshot id a manifest key belongs to, or undefined for any other key. */
export function snapshotIdOfManifest(key: string): string | undefined {
  const m = /^snapshots\/([^/]+)\/manifest\.json$/.exec(key);
  return m && isSnapshotId(m[1]!) ? m[1] : undefined;
}

export function snapshotTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id)!;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
