import { inTheFuture, type ArchiveVersion } from "../archive/format.ts";
import { parseManifest, type StoredManifest } from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import { readAll, type StorageBackend } from "./backend.ts";
import { archiveKey, isSnapshotId, manifestKey, SNAPSHOTS_PREFIX, snapshotIdOfManifest } from "./layout.ts";

/**
 * A snapshot as storage lists it: complete (its manifest exists), with that manifest as stored
 * (sealed when encrypted: openManifest in crypto/manifest.ts gives its content).
 */
export interface StoredSnapshot {
  id: string;
  manifest: StoredManifest;
}

/**
 * A stored manifest, checked against its key and this machine's clock: a snapshot dated in the
 * future (beyond CLOCK_SKEW_MS) is refused, so a bucket writer cannot make one that outranks every
 * real snapshot in `latest` and retention.
 */
export async function readManifest(
  storage: StorageBackend,
  id: string,
  now = new Date(),
): Promise<StoredManifest> {
  return (await readManifestBytes(storage, id, now)).manifest;
}

/** A snapshot resolved for reading: its manifest, and the bytes it was parsed from (what a signature covers). */
export interface ResolvedSnapshot extends StoredSnapshot {
  bytes: Buffer;
}

/** readManifest, with the stored bytes the manifest was parsed from. */
export async function readManifestBytes(
  storage: StorageBackend,
  id: string,
  now = new Date(),
): Promise<ResolvedSnapshot> {
  const bytes = await readAll(await storage.read(manifestKey(id)));
  const manifest = parseManifest(bytes.toString("utf8"));
  if (manifest.snapshotId !== id) {
    throw new CrdBackupError(
      "ARCHIVE_INVALID",
      `snapshot ${id}: its manifest names snapshot ${manifest.snapshotId}`,
      { id },
    );
  }
  const finished = new Date(manifest.finishedAt);
  if (inTheFuture(finished, now)) {
    throw new CrdBackupError(
      "ARCHIVE_INVALID",
      `manifest of snapshot ${id}: finishedAt ${manifest.finishedAt} is in the future (this machine's clock says ${now.toISOString()}); refused as forged or mis-dated`,
      { id },
    );
  }
  return { id, manifest, bytes };
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

/**
 * The newest complete snapshot, of one cluster (`latest@<uid>`, a unique prefix of the uid is
 * enough) or of the only cluster the location holds. Plain `latest` is refused when several
 * clusters share the location: restoring another cluster's snapshot by accident is worse than
 * having to say which.
 */
async function resolveLatest(
  storage: StorageBackend,
  cluster: string | undefined,
): Promise<ResolvedSnapshot> {
  const unreadable: { id: string; error: Error }[] = [];
  const all = await listSnapshots(storage, (id, error) => unreadable.push({ id, error }));
  const uids = [...new Set(all.map((s) => s.manifest.cluster.uid))];
  const chosen = cluster === undefined ? uids : uids.filter((u) => u.startsWith(cluster));
  const describe = (uid: string) => {
    // an encrypted snapshot's server is sealed: the uid alone names its cluster
    const newest = all.findLast((s) => s.manifest.cluster.uid === uid)!.manifest;
    return newest.sealed ? uid : `${uid} (${newest.cluster.server})`;
  };
  if (chosen.length === 0) {
    throw new CrdBackupError(
      "NOT_FOUND",
      cluster === undefined
        ? `no complete snapshot in ${storage.location}`
        : `no complete snapshot of a cluster ${cluster}… in ${storage.location} (it holds ${uids.map(describe).join(", ") || "none"})`,
    );
  }
  if (chosen.length > 1) {
    throw new CrdBackupError(
      "USAGE",
      `"${cluster === undefined ? "latest" : `latest@${cluster}`}" is ambiguous: ${storage.location} holds snapshots of ${chosen.length} clusters: ${chosen.map(describe).join(", ")}; say latest@<cluster uid> or give a snapshot id`,
    );
  }
  const newest = all.findLast((s) => s.manifest.cluster.uid === chosen[0])!;
  // a newer snapshot that cannot be read might be the one meant: never step past it silently
  const newer = unreadable.find((u) => u.id > newest.id);
  if (newer) {
    throw new CrdBackupError(
      "ARCHIVE_INVALID",
      `snapshot ${newer.id}: ${newer.error.message}; name a snapshot id instead of latest`,
      {
        id: newer.id,
      },
    );
  }
  // read again for its bytes: the signature check and every use after it see these exact bytes
  return readManifestBytes(storage, newest.id);
}

/** Resolves `latest`, `latest@<cluster uid>` or a full snapshot id to a complete snapshot. */
export async function resolveSnapshot(storage: StorageBackend, ref: string): Promise<ResolvedSnapshot> {
  if (ref === "latest") return resolveLatest(storage, undefined);
  if (ref.startsWith("latest@") && ref.length > "latest@".length) return resolveLatest(storage, ref.slice(7));
  if (!isSnapshotId(ref)) {
    throw new CrdBackupError(
      "USAGE",
      `"${ref}" is not a snapshot id (like 20261122T041500Z-1a2b3c4d), "latest" or "latest@<cluster uid>"`,
    );
  }
  try {
    return await readManifestBytes(storage, ref);
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

export function openArchive(
  storage: StorageBackend,
  id: string,
  version: ArchiveVersion,
  signal?: AbortSignal,
) {
  return storage.read(archiveKey(id, version), { signal });
}
