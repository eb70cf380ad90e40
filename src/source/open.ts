import type { PointInTimeRef } from "../journal/replay/plan.ts";
import { fetchPointInTime } from "./point-in-time.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { VerifiedSnapshot, type EntryVisitor } from "./verified.ts";

/** A snapshot id, "latest", "latest@<uid>", or a point in time of a recorded cluster. */
export type SnapshotRef = string | PointInTimeRef;

/**
 * The verified source a command named: a stored snapshot, or the state at a point in time rebuilt
 * from a base and its journal (`--at`). Either way the caller gets the same VerifiedSnapshot, so
 * plan, dry-run, conflicts, owners, modifiers and reports never learn where entries came from.
 * `visit` sees the entries of the one verification pass (verified.ts EntryVisitor).
 */
export function openSource(
  storage: StorageBackend,
  ref: SnapshotRef,
  signal?: AbortSignal,
  visit?: EntryVisitor,
): Promise<VerifiedSnapshot> {
  return typeof ref === "string"
    ? VerifiedSnapshot.fetch(storage, ref, signal, visit)
    : fetchPointInTime(storage, ref, signal, visit);
}
