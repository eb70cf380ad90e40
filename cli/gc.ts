/**
 * Garbage collection that favours memory over CPU where memory is what grows, set at run time
 * (Node's launch flags hold for every command, and the snapshot's and a small restore's speed
 * targets are CPU-bound on a shared machine).
 */
import v8 from "node:v8";

/**
 * For the commands that read a whole journal (history, changes, the web view): they parse a
 * million records into short-lived objects and chunks; with V8's default heap growing, the old
 * generation grew to twice its live size and external chunks waited 64 MB for a collection.
 * `changes` over an hour of a million-event journal peaked at 190-280 MiB, and at 168-181 MiB with
 * these, for no measurable CPU (V8's memory saver gave 156-173 MiB for 20% more CPU).
 */
export function favourMemory(): void {
  // grow the old generation's limit by 25% of what survives a collection, not V8's 1.5x-4x
  v8.setFlagsFromString("--heap-growing-percent=25");
  // count Buffers' memory toward that limit, so garbage chunks are collected with the heap
  v8.setFlagsFromString("--external-memory-accounted-in-global-limit");
}

/** A restore's source from this many objects on runs with V8's memory saver. */
export const LARGE_SOURCE_OBJECTS = 100_000;

/**
 * For a restore of a large source: its verification and planning passes leave ~50 MB of garbage
 * that V8 otherwise keeps, with the pages it frees, until a full collection a minute or two into
 * the writes, so the peak grew with the archive (bench:scale: 182 MiB at 50k objects, 233 at
 * 300k); the memory saver keeps the heap near what is live (142 MiB at both). It costs 20-30% more
 * client CPU, which a large restore, waiting on the API server (client CPU a quarter of its wall
 * time at 300k), does not feel, and a small one, CPU-bound on a shared machine, would: below the
 * threshold the garbage is bounded by the threshold's.
 */
export function saveMemoryFor(objects: number): void {
  if (objects >= LARGE_SOURCE_OBJECTS) v8.setFlagsFromString("--memory-saver-mode");
}
