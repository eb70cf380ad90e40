/**
 * Garbage collection that favours memory over CPU, for the commands that read a whole journal
 * (history, changes, the web view). They parse a million records into short-lived objects and
 * chunks; with V8's default heap growing, the old generation grew to twice its live size and
 * external chunks waited 64 MB for a collection: `changes` over an hour of a million-event journal
 * peaked at 214-280 MiB, and at 172-181 MiB with these, for about 5% more CPU. Set at run time, so
 * the snapshot and restore keep V8's defaults.
 */
import v8 from "node:v8";

export function favourMemory(): void {
  // grow the old generation's limit by 25% of what survives a collection, not V8's 1.5x-4x
  v8.setFlagsFromString("--heap-growing-percent=25");
  // count Buffers' memory toward that limit, so garbage chunks are collected with the heap
  v8.setFlagsFromString("--external-memory-accounted-in-global-limit");
}
