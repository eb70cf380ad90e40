import { identitiesFor } from "../crypto/keyring.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { segmentKey, type SegmentKey } from "./segment-key.ts";
import type { JournalRecord, SegmentTrailer } from "./segment-format.ts";
import { readSegment } from "./segment-reader.ts";

/**
 * A stored segment's records, checked (readSegment), decrypted with the identities that go with
 * the storage handle when the segment is encrypted: readers of the journal, like readers of
 * snapshots, never pass keys around.
 */
export async function readStoredSegment(
  storage: StorageBackend,
  seg: SegmentKey,
  prev: string | null,
  signal?: AbortSignal,
): Promise<AsyncGenerator<JournalRecord, SegmentTrailer>> {
  const stored = await storage.read(segmentKey(seg), { signal });
  return readSegment(stored, { ...seg, prev }, identitiesFor(storage));
}
