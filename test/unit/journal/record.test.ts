import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { ChainWriter } from "../../../src/journal/record/chain-writer.ts";
import { decodeItem, objectResource, CRDS } from "../../../src/journal/record/decode.ts";
import { findResumePoint } from "../../../src/journal/record/resume.ts";
import { Uploader } from "../../../src/journal/record/uploader.ts";
import { parseSegmentKey, segmentKey } from "../../../src/journal/segment-key.ts";
import type { JournalRecord, PendingRecord, SegmentTrailer } from "../../../src/journal/segment-format.ts";
import { readSegment } from "../../../src/journal/segment-reader.ts";
import { decodeEvent, metadataString } from "../../../src/kube/watch.ts";
import { JournalStats, journalMetrics } from "../../../src/report/journal-metrics.ts";
import { formatMetrics } from "../../../src/report/metrics.ts";
import { silentLogger } from "../../../src/report/log.ts";
import type { StorageBackend } from "../../../src/storage/backend.ts";
import { LocalBackend } from "../../../src/storage/local.ts";

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));

describe("watch events", () => {
  const crd = {
    name: "widgets.example.com",
    group: "example.com",
    plural: "widgets",
    kind: "Widget",
    namespaced: true,
    storageVersion: "v1",
    servedVersions: ["v1"],
    listVersion: "v1",
    statusVersions: [],
    established: true,
    problem: undefined,
  };

  it("cuts the object out of an event and cleans it as a snapshot does, keeping every number's text", () => {
    const object =
      '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"ns","uid":"u-1","resourceVersion":"42","generation":3,"creationTimestamp":"2026-12-03T00:00:00Z","managedFields":[{}]},"spec":{"big":9007199254740993,"min":-9223372036854775808,"f":1.0e3,"s":"é\\u0000"}}';
    const line = Buffer.from(`{"type":"MODIFIED","object":${object}}`);
    const event = decodeEvent("/apis/example.com/v1/widgets", line)!;
    expect(event.type).toBe("MODIFIED");
    const item = decodeItem(objectResource(crd), event.bytes, event.objectStart);
    expect(item.body.toString()).toBe(
      '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"ns"},"spec":{"big":9007199254740993,"min":-9223372036854775808,"f":1.0e3,"s":"é\\u0000"}}',
    );
    expect(item).toMatchObject({ uid: "u-1", rv: "42", key: { kind: "object", namespace: "ns", name: "w" } });
  });

  it("reads a bookmark's resourceVersion, and throws an ERROR event's code (410 Gone)", () => {
    const bookmark = decodeEvent(
      "/x",
      Buffer.from('{"type":"BOOKMARK","object":{"kind":"Widget","metadata":{"resourceVersion":"1234"}}}'),
    )!;
    expect(metadataString(bookmark.bytes, bookmark.objectStart, "resourceVersion")).toBe("1234");
    expect(() =>
      decodeEvent(
        "/x",
        Buffer.from(
          '{"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"too old resource version: 5 (9)","reason":"Expired","code":410}}',
        ),
      ),
    ).toThrow(expect.objectContaining({ status: 410 }));
    expect(decodeEvent("/x", Buffer.from("  "))).toBeUndefined();
  });

  it("cleans a CRD as a snapshot does: kind and apiVersion first, no status, int64 kept", () => {
    const line = Buffer.from(
      '{"type":"ADDED","object":{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1","metadata":{"name":"widgets.example.com","uid":"c-1","resourceVersion":"7"},"spec":{"group":"example.com","x":9007199254740993},"status":{"conditions":[]}}}',
    );
    const event = decodeEvent("/crds", line)!;
    const item = decodeItem(CRDS, event.bytes, event.objectStart);
    expect(item.body.toString()).toBe(
      '{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1","metadata":{"name":"widgets.example.com"},"spec":{"group":"example.com","x":9007199254740993}}',
    );
    expect(item).toMatchObject({ uid: "c-1", rv: "7", key: { kind: "crd", name: "widgets.example.com" } });
  });
});

/** A local backend that fails every write while `down` is set. */
function flaky(): { storage: StorageBackend; root: string; down: { on: boolean } } {
  const root = tmp("crd-backup-journal-");
  const local = new LocalBackend(root);
  const down = { on: false };
  const storage: StorageBackend = {
    location: local.location,
    write: (k, b, o) => local.write(k, b, o),
    createExclusive: async (k, d, o) => {
      if (down.on) throw new CrdBackupError("STORAGE", "connection refused");
      return local.createExclusive(k, d, o);
    },
    read: (k) => local.read(k),
    stat: (k) => local.stat(k),
    list: (p) => local.list(p),
    remove: (k) => local.remove(k),
    cleanupIncomplete: (p, o) => local.cleanupIncomplete(p, o),
  };
  return { storage, root, down };
}

async function readBack(
  storage: StorageBackend,
): Promise<{ records: JournalRecord[]; trailers: SegmentTrailer[] }> {
  const keys = [];
  for await (const { key } of storage.list("journal/")) keys.push(parseSegmentKey(key)!);
  keys.sort((a, b) => a.seq - b.seq);
  const records: JournalRecord[] = [];
  const trailers: SegmentTrailer[] = [];
  let prev: string | null = null;
  for (const [i, key] of keys.entries()) {
    expect(key.seq).toBe(i + 1);
    const it = readSegment(await storage.read(segmentKey(key)), { ...key, prev });
    let next: IteratorResult<JournalRecord, SegmentTrailer>;
    while (!(next = await it.next()).done) records.push(next.value);
    trailers.push(next.value);
    prev = key.sha256;
  }
  return { records, trailers };
}

const put = (name: string): PendingRecord => ({
  op: "put",
  kind: "object",
  group: "example.com",
  version: "v1",
  plural: "widgets",
  namespace: "ns",
  name,
  uid: `uid-${name}`,
  rv: "1",
  body: Buffer.from(`{"metadata":{"name":"${name}"}}`),
});

describe("chain writer and uploader", () => {
  const position = {
    cluster: "c-1",
    base: "20261203T050000Z-00000001",
    seq: 0,
    prev: null,
    to: new Date("2026-12-03T05:00:00.000Z"),
  };

  it("writes a hash chain of segments whose windows join, with the rvs in each trailer", async () => {
    const { storage } = flaky();
    const stats = new JournalStats();
    const uploader = new Uploader(storage, { dir: tmp("spool-"), limit: 1 << 20, stats, log: silentLogger });
    await uploader.init();
    const writer = new ChainWriter(position, {
      uploader,
      stats,
      log: silentLogger,
      emptyEveryMs: 60_000,
      onOverflow: () => undefined,
    });
    writer.add(put("a"));
    writer.rvs.set("widgets.example.com/v1", "10");
    await writer.flush();
    await writer.flush(); // empty and recent: nothing written
    writer.add(put("b"));
    writer.addGap(new Date("2026-12-03T05:00:00.000Z"), "test", ["*"]);
    writer.rvs.set("widgets.example.com/v1", "11");
    await writer.close(); // written even if it were empty
    await uploader.whenDrained();
    const { records, trailers } = await readBack(storage);
    expect(records.map((r) => (r.op === "put" ? r.name : r.op))).toEqual(["a", "b", "gap"]);
    expect(trailers.map((t) => t.rvs)).toEqual([
      { "widgets.example.com/v1": "10" },
      { "widgets.example.com/v1": "11" },
    ]);
    expect(stats).toMatchObject({ segments: 2, gaps: 1, events: 3 });
    expect(formatMetrics(journalMetrics(stats))).toMatch(/^crd_backup_journal_event_lag_seconds_count 3$/m);
  });

  it("keeps segments in the spool while storage is down, in order, and stores them when it is back", async () => {
    const { storage, down } = flaky();
    const stats = new JournalStats();
    const dir = tmp("spool-");
    const uploader = new Uploader(storage, { dir, limit: 1 << 20, stats, log: silentLogger });
    await uploader.init();
    const writer = new ChainWriter(position, {
      uploader,
      stats,
      log: silentLogger,
      emptyEveryMs: 0,
      onOverflow: () => undefined,
    });
    down.on = true;
    for (const name of ["a", "b", "c"]) {
      writer.add(put(name));
      await writer.flush();
    }
    await sleep(600);
    expect(readdirSync(dir).filter((f) => !f.endsWith(".tmp"))).toHaveLength(3);
    expect(stats.spoolBytes).toBeGreaterThan(0);
    expect(stats.currentLag()).toBeGreaterThan(0.5);
    down.on = false;
    await uploader.whenDrained();
    expect(readdirSync(dir)).toEqual([]);
    expect(stats.spoolBytes).toBe(0);
    const { records } = await readBack(storage);
    expect(records.map((r) => (r.op === "put" ? r.name : r.op))).toEqual(["a", "b", "c"]);
  });

  it("refuses a segment that would overflow the spool, and the chain goes on from its last stored segment", async () => {
    const { storage, down } = flaky();
    const stats = new JournalStats();
    const uploader = new Uploader(storage, { dir: tmp("spool-"), limit: 200, stats, log: silentLogger });
    await uploader.init();
    const overflows: Date[] = [];
    const writer = new ChainWriter(position, {
      uploader,
      stats,
      log: silentLogger,
      emptyEveryMs: 0,
      onOverflow: (since) => overflows.push(since),
    });
    down.on = true;
    writer.add(put("a"));
    await writer.flush(); // the head, held in memory (then spooled past the limit: one segment may)
    writer.add(put("b"));
    await writer.flush(); // does not fit
    expect(overflows).toHaveLength(1);
    expect(writer.overflowed).toBe(true);
    writer.add(put("dropped"));
    down.on = false;
    await uploader.whenDrained();
    writer.resume();
    writer.addGap(overflows[0]!, "the spool overflowed", ["*"]);
    writer.add(put("c"));
    await writer.close();
    await uploader.whenDrained();
    const { records } = await readBack(storage);
    expect(records.map((r) => (r.op === "put" ? r.name : r.op))).toEqual(["a", "gap", "c"]);
  });

  it("a new uploader takes over the spool a killed recorder left, in key order", async () => {
    const { storage, down } = flaky();
    const dir = tmp("spool-");
    const stats = new JournalStats();
    const first = new Uploader(storage, { dir, limit: 1 << 20, stats, log: silentLogger });
    await first.init();
    const writer = new ChainWriter(position, {
      uploader: first,
      stats,
      log: silentLogger,
      emptyEveryMs: 0,
      onOverflow: () => undefined,
    });
    down.on = true;
    for (const name of ["a", "b"]) {
      writer.add(put(name));
      await writer.flush();
    }
    await sleep(300);
    expect(await first.drain(0)).toBe(2); // what SIGTERM leaves when storage stays down
    down.on = false;
    const second = new Uploader(storage, {
      dir,
      limit: 1 << 20,
      stats: new JournalStats(),
      log: silentLogger,
    });
    await second.init();
    await second.whenDrained();
    const { records } = await readBack(storage);
    expect(records.map((r) => (r.op === "put" ? r.name : r.op))).toEqual(["a", "b"]);
  });
});

describe("where a restarted recorder continues", () => {
  const base = "20261203T050000Z-00000001";
  const start = { cluster: "c-1", base, seq: 0, prev: null, to: new Date("2026-12-03T05:00:00.000Z") };

  async function chainOf(segments: number): Promise<{ storage: StorageBackend; root: string }> {
    const { storage, root } = flaky();
    await storage.createExclusive(`snapshots/${base}/manifest.json`, Buffer.from("{}"));
    const stats = new JournalStats();
    const uploader = new Uploader(storage, { dir: tmp("spool-"), limit: 1 << 20, stats, log: silentLogger });
    await uploader.init();
    const writer = new ChainWriter(start, {
      uploader,
      stats,
      log: silentLogger,
      emptyEveryMs: 0,
      onOverflow: () => undefined,
    });
    for (let i = 0; i < segments; i++) {
      writer.add(put(`o${i}`));
      writer.rvs.set("crds", String(100 + i));
      await writer.flush();
    }
    await uploader.whenDrained();
    return { storage, root };
  }

  it("the newest chain's last segment: its position and trailer rvs", async () => {
    const { storage } = await chainOf(3);
    const point = await findResumePoint(storage, "c-1", silentLogger);
    const keys = [];
    for await (const { key } of storage.list("journal/")) keys.push(parseSegmentKey(key)!);
    const last = keys.sort((a, b) => a.seq - b.seq).at(-1)!;
    expect(point).toEqual({
      cluster: "c-1",
      base,
      seq: 3,
      prev: last.sha256,
      to: last.to,
      rvs: { crds: "102" },
    });
    expect(await findResumePoint(storage, "other-cluster", silentLogger)).toBeUndefined();
  });

  it("none when the base is gone, a segment is missing, or the last one does not verify", async () => {
    const gone = await chainOf(2);
    await gone.storage.remove(`snapshots/${base}/manifest.json`);
    expect(await findResumePoint(gone.storage, "c-1", silentLogger)).toBeUndefined();

    const holed = await chainOf(3);
    for await (const { key } of holed.storage.list("journal/"))
      if (key.includes("/00000002-")) await holed.storage.remove(key);
    expect(await findResumePoint(holed.storage, "c-1", silentLogger)).toBeUndefined();

    const altered = await chainOf(2);
    for await (const { key } of altered.storage.list("journal/")) {
      if (!key.includes("/00000002-")) continue;
      const bytes = readFileSync(path.join(altered.root, key));
      bytes[bytes.length - 10]! ^= 0xff;
      writeFileSync(path.join(altered.root, key), bytes);
    }
    expect(await findResumePoint(altered.storage, "c-1", silentLogger)).toBeUndefined();
  });
});
