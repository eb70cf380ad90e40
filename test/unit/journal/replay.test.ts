import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isSnapshotId } from "../../../src/archive/format.ts";
import { expectedArchive, type Manifest, type ManifestResource } from "../../../src/archive/manifest.ts";
import { readArchive, type ArchiveEntry } from "../../../src/archive/reader.ts";
import { ArchiveWriter } from "../../../src/archive/writer.ts";
import { checkContinuity, subtractGaps } from "../../../src/journal/chains.ts";
import { ChangeSet } from "../../../src/journal/replay/changes.ts";
import { pointInTimeId, writeState } from "../../../src/journal/replay/materialize.ts";
import { parseAt, type PointInTimePlan } from "../../../src/journal/replay/plan.ts";
import type { JournalRecord, RecordKey } from "../../../src/journal/segment-format.ts";
import { parseSegmentKey, segmentKey } from "../../../src/journal/segment-key.ts";

const d = (s: string) => new Date(`2026-12-03T05:${s}Z`);
const iso = (s: string) => d(s).toISOString();

describe("windows", () => {
  it("subtracts each gap's open interval; a gap's edges stay recoverable", () => {
    const w = subtractGaps(d("20:00"), d("21:00"), [
      { from: d("20:30"), to: d("20:40") },
      { from: d("19:00"), to: d("20:05") },
      { from: d("20:50"), to: d("22:00") },
    ]);
    expect(w.map((x) => [x.from.toISOString(), x.to.toISOString()])).toEqual([
      [iso("20:05"), iso("20:30")],
      [iso("20:40"), iso("20:50")],
    ]);
    expect(subtractGaps(d("20:00"), d("21:00"), [])).toEqual([{ from: d("20:00"), to: d("21:00") }]);
  });

  it("finds holes in seq and time from keys alone", () => {
    const seg = (seq: number, from: string, to: string) =>
      parseSegmentKey(
        segmentKey({
          cluster: "c",
          base: "20261203T052000Z-1a2b3c4d",
          seq,
          from: d(from),
          to: d(to),
          sha256: "a".repeat(64),
          gap: false,
        }),
      )!;
    expect(checkContinuity([seg(1, "20:00", "20:05"), seg(2, "20:05", "20:10")])).toBeUndefined();
    expect(checkContinuity([seg(1, "20:00", "20:05"), seg(3, "20:10", "20:15")])?.message).toBe(
      "segment 2 is missing (the next is 3)",
    );
    expect(checkContinuity([seg(1, "20:00", "20:05"), seg(2, "20:06", "20:10")])?.message).toMatch(
      /^starts at .*, segment 1 ended at/,
    );
    expect(checkContinuity([seg(2, "20:00", "20:05")])?.message).toBe("segment 1 is missing (the next is 2)");
  });

  it("parses --at", () => {
    expect(parseAt("now")).toBe("now");
    expect(parseAt("2026-12-03T06:20:00+01:00")).toEqual(d("20:00"));
    expect(() => parseAt("yesterday")).toThrow(/not an RFC 3339 time/);
    expect(() => parseAt("2026-12-03")).toThrow(/not an RFC 3339 time/);
  });

  it("names a point in time with a valid, deterministic snapshot id that sorts by time", () => {
    const a = pointInTimeId(new Date("2026-12-03T05:20:00.250Z"), "20261203T050000Z-1a2b3c4d");
    expect(isSnapshotId(a)).toBe(true);
    expect(a).toBe(pointInTimeId(new Date("2026-12-03T05:20:00.250Z"), "20261203T050000Z-1a2b3c4d"));
    expect(a.startsWith("20261203T052000Z-")).toBe(true);
    expect(pointInTimeId(new Date("2026-12-03T05:20:00.750Z"), "20261203T050000Z-1a2b3c4d") > a).toBe(true);
  });
});

const G = "example.com";
const crdBody = (plural: string, kind: string) =>
  Buffer.from(
    JSON.stringify({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.${G}` },
      spec: {
        group: G,
        scope: "Namespaced",
        names: { plural, kind },
        versions: [{ name: "v1", served: true, storage: true }],
      },
    }),
  );
const objBody = (kind: string, ns: string, name: string, extra = "") =>
  Buffer.from(
    `{"apiVersion":"${G}/v1","kind":"${kind}","metadata":{"name":"${name}","namespace":"${ns}"},"spec":{"n":9223372036854775807${extra}}}`,
  );
const nsBody = (name: string) =>
  Buffer.from(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"${name}"}}`);
const resource = (plural: string, kind: string): ManifestResource => ({
  group: G,
  version: "v1",
  plural,
  kind,
  namespaced: true,
  storageVersion: "v1",
  servedVersions: ["v1"],
  count: 0,
  bytes: 0,
  listResourceVersion: "1",
  consistent: true,
  errors: [],
});

/** A base: widgets a/w1, a/w2, b/w3 and gizmos a/g1, Namespaces a and b. */
async function base(dir: string): Promise<{ manifest: Manifest; entries(): AsyncIterable<ArchiveEntry> }> {
  const id = "20261203T050000Z-1a2b3c4d";
  const writer = new ArchiveWriter(id, { tmpDir: dir });
  const chunks: Buffer[] = [];
  writer.stream.on("data", (c: Buffer) => chunks.push(c));
  await writer.addCrd(`gizmos.${G}`, crdBody("gizmos", "Gizmo"), { uid: "crd-g" });
  await writer.addCrd(`widgets.${G}`, crdBody("widgets", "Widget"), { uid: "crd-w" });
  const o = (plural: string, ns: string, name: string) => ({
    group: G,
    version: "v1",
    plural,
    namespace: ns,
    name,
  });
  await writer.addObject(o("widgets", "a", "w1"), objBody("Widget", "a", "w1"), { uid: "u-w1" });
  await writer.addObject(o("widgets", "a", "w2"), objBody("Widget", "a", "w2"), { uid: "u-w2" });
  await writer.addObject(o("widgets", "b", "w3"), objBody("Widget", "b", "w3"), { uid: "u-w3" });
  await writer.addObject(o("gizmos", "a", "g1"), objBody("Gizmo", "a", "g1"), { uid: "u-g1" });
  await writer.addNamespace("a", nsBody("a"), { uid: "u-a" });
  await writer.addNamespace("b", nsBody("b"), { uid: "u-b" });
  const totals = await writer.finish();
  const bytes = Buffer.concat(chunks);
  const manifest: Manifest = {
    formatVersion: 1,
    toolVersion: "test",
    snapshotId: id,
    status: "complete",
    cluster: { uid: "c1", server: "https://k", serverVersion: "v1.36.4" },
    startedAt: "2026-12-03T05:00:00.000Z",
    finishedAt: "2026-12-03T05:00:01.000Z",
    options: {},
    resources: [
      { ...resource("widgets", "Widget"), count: 3 },
      { ...resource("gizmos", "Gizmo"), count: 1 },
    ],
    namespaceErrors: [],
    counts: totals.counts,
    archive: { key: "archive.tar.gz", size: totals.size, sha256: totals.sha256, entries: totals.entries },
    index: { sha256: totals.indexSha256, entries: totals.indexEntries },
  };
  return { manifest, entries: () => readArchive([bytes], expectedArchive(manifest)) };
}

describe("replay onto a base", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "replay-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const key = (plural: string, ns: string, name: string): RecordKey => ({
    kind: "object",
    group: G,
    version: "v1",
    plural,
    namespace: ns,
    name,
  });
  const put = (t: string, k: RecordKey, body: Buffer): JournalRecord => ({
    t: iso(t),
    op: "put",
    ...k,
    uid: `u-${k.name}`,
    rv: "9",
    body,
  });

  async function replay(records: JournalRecord[], at: string) {
    const b = await base(dir);
    await using changes = await ChangeSet.create(path.join(dir, "spill"));
    for (const r of records) if (Date.parse(r.t) <= d(at).getTime()) await changes.apply(r);
    const plan: PointInTimePlan = {
      at: d(at),
      cluster: "c1",
      base: b.manifest.snapshotId,
      segments: [],
      prevOfFirst: null,
    };
    const file = path.join(dir, "out.tar.gz");
    const manifest = await writeState(b, plan, changes, file, undefined);
    const entries: { name: string; body: string; uid?: string }[] = [];
    for await (const e of readArchive(createReadStream(file), expectedArchive(manifest))) {
      if (e.kind === "crd" || e.kind === "namespace" || e.kind === "object")
        entries.push({
          name: e.name,
          body: e.body.toString(),
          ...(e.record.uid ? { uid: e.record.uid } : {}),
        });
    }
    return { manifest, entries, names: entries.map((e) => e.name) };
  }

  const records: JournalRecord[] = [
    put("01:00", key("widgets", "a", "w1"), objBody("Widget", "a", "w1", ',"v":2')),
    { t: iso("02:00"), op: "delete", ...key("widgets", "b", "w3"), uid: "u-w3", rv: "10" },
    {
      t: iso("03:00"),
      op: "put",
      kind: "crd",
      name: `gadgets.${G}`,
      uid: "crd-x",
      rv: "11",
      body: crdBody("gadgets", "Gadget"),
    },
    put("04:00", key("gadgets", "c", "x1"), objBody("Gadget", "c", "x1")),
    { t: iso("04:00"), op: "put", kind: "namespace", name: "c", uid: "u-c", rv: "12", body: nsBody("c") },
    { t: iso("05:00"), op: "delete", kind: "crd", name: `gizmos.${G}`, uid: "crd-g", rv: "13" },
    {
      t: iso("06:00"),
      op: "resync",
      phase: "begin",
      kind: "object",
      group: G,
      version: "v1",
      plural: "widgets",
      rv: "14",
    },
    put("06:10", key("widgets", "a", "w1"), objBody("Widget", "a", "w1", ',"v":3')),
    {
      t: iso("06:20"),
      op: "resync",
      phase: "end",
      kind: "object",
      group: G,
      version: "v1",
      plural: "widgets",
      rv: "15",
    },
    put("07:00", key("widgets", "a", "w2"), objBody("Widget", "a", "w2", ',"v":4')),
  ];

  it("before any record: the base as it was, under a point-in-time id", async () => {
    const r = await replay(records, "00:30");
    expect(r.names).toEqual([
      `crds/gizmos.${G}.json`,
      `crds/widgets.${G}.json`,
      `objects/${G}/v1/widgets/a/w1.json`,
      `objects/${G}/v1/widgets/a/w2.json`,
      `objects/${G}/v1/widgets/b/w3.json`,
      `objects/${G}/v1/gizmos/a/g1.json`,
      "namespaces/a.json",
      "namespaces/b.json",
    ]);
    expect(r.manifest.snapshotId.startsWith("20261203T050030Z-")).toBe(true);
    expect(r.manifest.pointInTime).toMatchObject({ base: "20261203T050000Z-1a2b3c4d", records: 0 });
    expect(r.manifest.status).toBe("complete");
  });

  it("puts, deletes, a CRD created with a new Namespace: bodies byte for byte, uids kept", async () => {
    const r = await replay(records, "04:30");
    expect(r.names).toEqual([
      `crds/gizmos.${G}.json`,
      `crds/widgets.${G}.json`,
      `crds/gadgets.${G}.json`,
      `objects/${G}/v1/widgets/a/w2.json`,
      `objects/${G}/v1/gizmos/a/g1.json`,
      `objects/${G}/v1/widgets/a/w1.json`,
      `objects/${G}/v1/gadgets/c/x1.json`,
      "namespaces/a.json",
      "namespaces/c.json",
    ]);
    const w1 = r.entries.find((e) => e.name.endsWith("/a/w1.json"))!;
    expect(w1.body).toBe(objBody("Widget", "a", "w1", ',"v":2').toString());
    expect(w1.body).toContain("9223372036854775807");
    expect(w1.uid).toBe("u-w1");
    expect(r.manifest.resources.map((x) => [x.plural, x.count])).toEqual([
      ["widgets", 2],
      ["gizmos", 1],
      ["gadgets", 1],
    ]);
    expect(r.manifest.resources[2]).toMatchObject({ kind: "Gadget", namespaced: true, version: "v1" });
    expect(r.manifest.counts).toEqual({ crds: 3, namespaces: 2, objects: 4 });
  });

  it("a deleted CRD drops its objects; a completed resync removes what it did not see", async () => {
    const during = await replay(records, "06:15"); // resync begun, not ended: w2 still there
    expect(during.names).toContain(`objects/${G}/v1/widgets/a/w2.json`);
    expect(during.names).not.toContain(`objects/${G}/v1/gizmos/a/g1.json`);
    expect(during.names).not.toContain(`crds/gizmos.${G}.json`);

    const after = await replay(records, "06:20");
    // changed objects come in the order they were first changed
    expect(after.names.filter((n) => n.startsWith("objects/"))).toEqual([
      `objects/${G}/v1/widgets/a/w1.json`,
      `objects/${G}/v1/gadgets/c/x1.json`,
    ]);
    const later = await replay(records, "07:00"); // put again after the resync: back
    expect(later.names).toContain(`objects/${G}/v1/widgets/a/w2.json`);
    expect(later.manifest.pointInTime).toMatchObject({ records: 10, lastRecord: iso("07:00") });
  });

  it("refuses a record whose name holds a slash (it would alias another key)", async () => {
    await expect(
      replay([put("01:00", key("widgets", "a", "w1/x"), objBody("Widget", "a", "w1"))], "01:00"),
    ).rejects.toThrow(/a name holds "\/"/);
  });

  it("keeps large bodies exactly through the spill file", async () => {
    const big = objBody("Widget", "a", "w1", `,"pad":"${"x".repeat(3 * 1024 * 1024)}"`);
    const r = await replay([put("01:00", key("widgets", "a", "w1"), big)], "01:00");
    expect(r.entries.find((e) => e.name.endsWith("/a/w1.json"))!.body).toBe(big.toString());
  });
});

describe("ChangeSet bodies", () => {
  it("reads back every body: still in the write buffer, flushed, and larger than the buffer", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "changeset-"));
    try {
      await using set = await ChangeSet.create(path.join(dir, "spill"));
      const bodies = new Map<string, Buffer>();
      // 300 KiB bodies: the 1 MiB buffer flushes every few; one 3 MiB body is written on its own
      for (let i = 0; i < 12; i++) {
        const name = `w${i}`;
        const body = Buffer.from(
          `{"i":${i},"pad":"${String(i % 10).repeat(i === 7 ? 3 << 20 : 300 << 10)}"}`,
        );
        bodies.set(name, body);
        await set.apply({
          t: iso("01:00"),
          op: "put",
          kind: "object",
          group: "g",
          version: "v1",
          plural: "widgets",
          namespace: "a",
          name,
          uid: `u-${name}`,
          rv: "1",
          body,
        });
        // the newest body (buffered) and the oldest (flushed) each time
        for (const n of [name, "w0"]) {
          const c = [...set.all()].find((x) => x.key.endsWith(`/${n}`))!;
          expect((await set.body(c)).equals(bodies.get(n)!)).toBe(true);
        }
      }
      const scratch = Buffer.alloc(4 << 20);
      for (const c of set.all()) {
        const n = c.key.slice(c.key.lastIndexOf("/") + 1);
        expect((await set.body(c, scratch)).equals(bodies.get(n)!)).toBe(true);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
