import { newSnapshotId } from "../../../src/archive/format.ts";
import type { PlainManifest } from "../../../src/archive/manifest.ts";

/**
 * The manifest of an empty snapshot of `cluster` started at `at` and finished `durationMs` later:
 * what retention and listing read, with no archive content behind it.
 */
export function emptyManifest(
  cluster: string,
  at: Date,
  durationMs = 1000,
  id = newSnapshotId(at),
): PlainManifest {
  return {
    formatVersion: 1,
    toolVersion: "test",
    snapshotId: id,
    status: "complete",
    cluster: { uid: cluster, server: "https://k", serverVersion: "v1.36.4" },
    startedAt: at.toISOString(),
    finishedAt: new Date(at.getTime() + durationMs).toISOString(),
    options: {},
    resources: [],
    namespaceErrors: [],
    counts: { crds: 0, namespaces: 0, objects: 0 },
    archive: { key: "archive.tar.gz", size: 1, sha256: "a".repeat(64), entries: 2 },
    index: { sha256: "b".repeat(64), entries: 0 },
  };
}
