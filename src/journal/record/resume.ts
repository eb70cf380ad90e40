/**
 * Where a restarted recorder continues: its cluster's newest chain, as long as the chain's base
 * still exists and its last segment reads back whole (readSegment checks its hash, its link to
 * the segment before it, and its trailer). Anything else means a new chain on a new base.
 */
import { inTheFuture, snapshotIdTime } from "../../archive/format.ts";
import { CrdBackupError } from "../../errors.ts";
import type { Logger } from "../../report/log.ts";
import type { StorageBackend } from "../../storage/backend.ts";
import { manifestKey } from "../../storage/layout.ts";
import { clusterPrefix, parseSegmentKey, segmentKey, type SegmentKey } from "../segment-key.ts";
import type { JournalRecord, SegmentTrailer } from "../segment-format.ts";
import { readSegment } from "../segment-reader.ts";
import type { ChainPosition } from "./chain-writer.ts";

export interface ResumePoint extends ChainPosition {
  /** The last segment's trailer: where each watch resumes. */
  rvs: Record<string, string>;
}

export async function findResumePoint(
  storage: StorageBackend,
  cluster: string,
  log: Logger,
  encrypted = false,
): Promise<ResumePoint | undefined> {
  // only the newest chain's segments are kept: the others are not needed
  let newest: SegmentKey[] = [];
  for await (const { key } of storage.list(clusterPrefix(cluster))) {
    const segment = parseSegmentKey(key);
    // a base dated ahead of this clock was not written by a recorder: never the newest chain
    if (!segment || inTheFuture(snapshotIdTime(segment.base))) continue;
    if (newest.length === 0 || segment.base > newest[0]!.base) newest = [segment];
    else if (segment.base === newest[0]!.base) newest.push(segment);
  }
  if (newest.length === 0) return undefined;
  const base = newest[0]!.base;
  const future = newest.find((s) => inTheFuture(s.to));
  if (future) {
    log.warn("the newest journal chain has a segment dated in the future: starting a new chain", {
      key: segmentKey(future),
    });
    return undefined;
  }
  if (!(await storage.stat(manifestKey(base)))) {
    log.warn("the newest journal chain's base snapshot is gone: starting a new chain", { base });
    return undefined;
  }
  newest.sort((a, b) => a.seq - b.seq);
  const last = newest.at(-1)!;
  const before = newest.at(-2);
  if (last.seq !== newest.length || (before && before.seq !== last.seq - 1)) {
    log.warn("the newest journal chain has a missing segment: starting a new chain", { base });
    return undefined;
  }
  if (last.encrypted || encrypted) {
    // a recorder holds only public keys: it cannot read an encrypted segment's trailer (where the
    // watches resume), and a chain never mixes plain and encrypted segments
    log.info("starting a new chain: an encrypted chain cannot be continued without a key", { base });
    return undefined;
  }
  try {
    const records = readSegment(await storage.read(segmentKey(last)), {
      ...last,
      prev: before?.sha256 ?? null,
    });
    let next: IteratorResult<JournalRecord, SegmentTrailer>;
    while (!(next = await records.next()).done);
    return {
      cluster,
      base,
      seq: last.seq,
      prev: last.sha256,
      to: last.to,
      rvs: next.value.rvs,
    };
  } catch (e) {
    if (!(e instanceof CrdBackupError) || e.code !== "ARCHIVE_INVALID") throw e;
    log.warn("the newest journal chain's last segment is unreadable: starting a new chain", {
      base,
      error: e.message,
    });
    return undefined;
  }
}
