import { identitiesFor } from "../crypto/keyring.ts";
import { signatureCheckFor } from "../signing/stored.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { segmentKey, type SegmentKey } from "./segment-key.ts";
import type { JournalRecord, SegmentTrailer } from "./segment-format.ts";
import { readSegment, type ReadOptions } from "./segment-reader.ts";

/**
 * A stored segment's records, checked (readSegment), decrypted with the identities that go with
 * the storage handle when the segment is encrypted: readers of the journal, like readers of
 * snapshots, never pass keys around. Its signature (`<key>.sig`) is checked as a manifest's is
 * (signing/stored.ts), over the stored bytes hashed as they are read.
 */
export async function readStoredSegment(
  storage: StorageBackend,
  seg: SegmentKey,
  prev: string | null,
  signal?: AbortSignal,
  options: ReadOptions = {},
): Promise<AsyncGenerator<JournalRecord, SegmentTrailer>> {
  const key = segmentKey(seg);
  // the signature first: a missing one that is required refuses before the segment is read
  const check = await signatureCheckFor(
    storage,
    key,
    { segment: key },
    `journal segment ${key}`,
    seg.signed ?? false,
  );
  const stored = await storage.read(key, { signal });
  if (!check) return readSegment(stored, { ...seg, prev }, identitiesFor(storage), options);
  stored.on("error", (e) => check.tap.destroy(e));
  check.tap.on("close", () => stored.destroy()); // a refusal mid-read ends the download too
  const records = readSegment(stored.pipe(check.tap), { ...seg, prev }, identitiesFor(storage), options);
  return (async function* () {
    // judged once the segment's own checks passed: its bytes were then all read, and hashed
    const trailer = yield* records;
    check.finish();
    return trailer;
  })();
}
