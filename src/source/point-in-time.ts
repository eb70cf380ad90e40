/**
 * A point in time as a VerifiedSnapshot: plan from the listing (usage errors before anything else
 * is read), read and check the chain's segments, fetch and verify the base as any snapshot (an
 * encrypted one decrypts there), write the state at T to a local archive, and verify that archive
 * like a downloaded one. Every consumer of VerifiedSnapshot then works on it unchanged.
 *
 * A damaged segment, a chain broken before T, or a base that fails verification is a
 * SourceRefusedError (thrown by the planner, readChanges and VerifiedSnapshot.fetch), before
 * anything is returned; as for a snapshot, the command says what it therefore did not do.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LOCAL_ARCHIVE, VerifiedSnapshot, type EntryVisitor } from "./verified.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { ChangeSet } from "../journal/replay/changes.ts";
import { readChanges, writeState } from "../journal/replay/materialize.ts";
import { planPointInTime, type PointInTimePlan, type PointInTimeRef } from "../journal/replay/plan.ts";

export async function fetchPointInTime(
  storage: StorageBackend,
  ref: PointInTimeRef,
  signal?: AbortSignal,
  visit?: EntryVisitor,
): Promise<VerifiedSnapshot> {
  const plan = await planPointInTime(storage, ref);
  return materialize(storage, plan, undefined, signal, visit);
}

/**
 * A later point in time of the same chain from a state already held (the standby's): `previous`
 * is the state at the end of the segment before `plan.segments` (whose hash is
 * `plan.prevOfFirst`), and only the new segments are read. The caller keeps `previous`. `visit`
 * sees the new state's verification pass, as fetchPointInTime's does.
 */
export function advancePointInTime(
  storage: StorageBackend,
  previous: VerifiedSnapshot,
  plan: PointInTimePlan,
  signal?: AbortSignal,
  visit?: EntryVisitor,
): Promise<VerifiedSnapshot> {
  return materialize(storage, plan, previous, signal, visit);
}

/** The state at plan.at: `held` plus the plan's segments, or (without it) the chain's base plus them. */
async function materialize(
  storage: StorageBackend,
  plan: PointInTimePlan,
  held: VerifiedSnapshot | undefined,
  signal?: AbortSignal,
  visit?: EntryVisitor,
): Promise<VerifiedSnapshot> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "crd-backup-at-"));
  try {
    {
      await using changes = await ChangeSet.create(path.join(dir, "journal.spill"));
      await readChanges(storage, plan, changes, signal);
      await using fetched = held ? undefined : await VerifiedSnapshot.fetch(storage, plan.base, signal);
      const manifest = await writeState(
        (held ?? fetched)!,
        plan,
        changes,
        path.join(dir, LOCAL_ARCHIVE),
        signal,
      );
      await rm(path.join(dir, "journal.spill"), { force: true });
      // the state at T is what the caller reads: its verification pass is the one visited
      return await VerifiedSnapshot.fromLocalArchive(manifest, dir, visit);
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
