import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  ArchiveWriter,
  readArchive,
  verifyArchive,
  type ArchiveEntry,
  type ArchiveTotals,
} from "../../../src/archive/index.ts";
import {
  SNAPSHOT_ID,
  crdBody,
  drain,
  expectInvalid,
  namespaceBody,
  objectBody,
  readAll,
  sha256,
  smallArchive,
  writeArchive,
} from "./helpers.ts";

const widgets = { group: "example.com", version: "v1", plural: "widgets" };
const gadgets = { group: "gadgets.example.org", version: "v1beta1", plural: "gadgets" };

function expectation(totals: ArchiveTotals) {
  return {
    snapshotId: SNAPSHOT_ID,
    sha256: totals.sha256,
    size: totals.size,
    entries: totals.entries,
    indexSha256: totals.indexSha256,
    indexEntries: totals.indexEntries,
    counts: totals.counts,
  };
}

describe("archive round trip", () => {
  it("reads back every entry, in order, byte for byte, with its index record", async () => {
    const big = objectBody(
      { ...widgets, namespace: "team-a", name: "big" },
      { spec: { blob: randomBytes(700 * 1024).toString("hex") } }, // a body of ~1.4 MiB
    );
    // Multi-byte UTF-8, a line separator, and an int64 a float64 cannot hold: all kept byte for byte.
    const unicode = Buffer.from(
      objectBody(
        { ...widgets, namespace: "team-b", name: "unicode" },
        { spec: { text: "héllo ✓ 😀 \u2028 日本語", n: 0 } },
        ["owner-1", "owner-2"],
      )
        .toString()
        .replace('"n":0', '"n":9007199254740993'),
    );
    const global = objectBody({ ...gadgets, name: "global" });
    const { bytes, totals } = await writeArchive(async (w) => {
      await w.addCrd("widgets.example.com", crdBody("widgets.example.com"), { uid: "crd-uid" });
      await w.addCrd("gadgets.gadgets.example.org", crdBody("gadgets.gadgets.example.org"));
      await w.addObject({ ...widgets, namespace: "team-a", name: "big" }, big, { uid: "u-big" });
      await w.addObject({ ...gadgets, name: "global" }, global);
      await w.addObject({ ...widgets, namespace: "team-b", name: "unicode" }, unicode, { uid: "u-uni" });
      await w.addNamespace("team-a", namespaceBody("team-a"));
      await w.addNamespace("team-b", namespaceBody("team-b"));
    });

    expect(bytes.length).toBe(totals.size);
    expect(sha256(bytes)).toBe(totals.sha256);
    expect(totals).toMatchObject({
      entries: 9,
      indexEntries: 7,
      counts: { crds: 2, namespaces: 2, objects: 3 },
    });

    const entries = await readAll(bytes, expectation(totals));
    expect(entries.map((e) => [e.kind, e.name])).toEqual([
      ["header", "crd-backup-archive.json"],
      ["crd", "crds/widgets.example.com.json"],
      ["crd", "crds/gadgets.gadgets.example.org.json"],
      ["object", "objects/example.com/v1/widgets/team-a/big.json"],
      ["object", "objects/gadgets.example.org/v1beta1/gadgets/_cluster/global.json"],
      ["object", "objects/example.com/v1/widgets/team-b/unicode.json"],
      ["namespace", "namespaces/team-a.json"],
      ["namespace", "namespaces/team-b.json"],
      ["index", "index.jsonl"],
    ]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    const bodyOf = (name: string) => {
      const e = byName.get(name) as Extract<ArchiveEntry, { body: Buffer }>;
      return e.body;
    };
    expect(bodyOf("objects/example.com/v1/widgets/team-a/big.json").equals(big)).toBe(true);
    expect(bodyOf("objects/example.com/v1/widgets/team-b/unicode.json").equals(unicode)).toBe(true);
    expect(bodyOf("crd-backup-archive.json").toString()).toBe(
      `{"format":"crd-backup-archive","formatVersion":1,"snapshotId":"${SNAPSHOT_ID}"}`,
    );

    const uni = byName.get("objects/example.com/v1/widgets/team-b/unicode.json");
    expect(uni?.kind === "object" && uni.ref).toEqual({ ...widgets, namespace: "team-b", name: "unicode" });
    expect(uni?.kind === "object" && uni.record).toEqual({
      entry: "objects/example.com/v1/widgets/team-b/unicode.json",
      sha256: sha256(unicode),
      size: unicode.length,
      kind: "object",
      uid: "u-uni",
      apiVersion: "example.com/v1",
      resourceKind: "Widget",
      group: "example.com",
      version: "v1",
      plural: "widgets",
      namespace: "team-b",
      name: "unicode",
      ownerUids: ["owner-1", "owner-2"],
    });
    const gadget = byName.get("objects/gadgets.example.org/v1beta1/gadgets/_cluster/global.json");
    expect(gadget?.kind === "object" && gadget.ref.namespace).toBeUndefined();
    expect(gadget?.kind === "object" && "namespace" in gadget.record).toBe(false);
    const index = byName.get("index.jsonl");
    expect(index?.kind === "index" && index.lines).toBe(7);
    expect(index?.sha256).toBe(totals.indexSha256);

    expect(await verifyArchive([bytes], expectation(totals))).toEqual({
      snapshotId: SNAPSHOT_ID,
      sha256: totals.sha256,
      size: totals.size,
      entries: 9,
      crds: 2,
      namespaces: 2,
      objects: 3,
      indexSha256: totals.indexSha256,
    });
  });

  it("writes and reads an archive with no entries but the header and the index", async () => {
    const { bytes, totals } = await writeArchive(async () => undefined);
    expect(totals).toMatchObject({
      entries: 2,
      indexEntries: 0,
      counts: { crds: 0, namespaces: 0, objects: 0 },
    });
    expect((await verifyArchive([bytes], expectation(totals))).entries).toBe(2);
  });

  it("reads from a Readable and from chunks of any size", async () => {
    const { bytes, totals } = await smallArchive();
    const oneByteAtATime = (async function* () {
      for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
    })();
    expect((await verifyArchive(oneByteAtATime, expectation(totals))).objects).toBe(2);
    const { Readable } = await import("node:stream");
    expect((await verifyArchive(Readable.from([bytes]), expectation(totals))).objects).toBe(2);
  });

  it("yields entries while the archive is still arriving", async () => {
    const { bytes } = await writeArchive(async (w) => {
      for (let i = 0; i < 8; i++) {
        const ref = { ...widgets, namespace: "ns", name: `o${i}` };
        await w.addObject(ref, objectBody(ref, { blob: randomBytes(128 * 1024).toString("base64") }));
      }
    });
    let delivered = 0;
    const source = (async function* () {
      for (let i = 0; i < bytes.length; i += 16 * 1024) {
        delivered = Math.min(bytes.length, i + 16 * 1024);
        yield bytes.subarray(i, i + 16 * 1024);
      }
    })();
    const seenAt: number[] = [];
    for await (const entry of readArchive(source)) {
      if (entry.kind === "object") seenAt.push(delivered);
    }
    expect(seenAt[0]).toBeLessThan(bytes.length / 2);
  });

  it("stops reading, and releases the source, when the consumer stops early", async () => {
    const { bytes } = await smallArchive();
    let finallyRan = false;
    const source = (async function* () {
      try {
        for (let i = 0; i < bytes.length; i += 100) yield bytes.subarray(i, i + 100);
      } finally {
        finallyRan = true;
      }
    })();
    for await (const entry of readArchive(source)) {
      if (entry.kind === "crd") break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(finallyRan).toBe(true);
  });
});

describe("archive writer", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "crd-backup-writer-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("enforces the entry order, and stays usable after refusing an entry", async () => {
    const writer = new ArchiveWriter(SNAPSHOT_ID, { tmpDir: dir });
    const consumed = drain(writer.stream);
    const a = { ...widgets, namespace: "ns", name: "a" };
    const g = { ...gadgets, name: "g" };
    await writer.addObject(a, objectBody(a));
    await writer.addObject(g, objectBody(g));
    // resources interleave page by page when several are listed at once
    await writer.addObject({ ...a, name: "b" }, objectBody({ ...a, name: "b" }));
    await expectInvalid(
      writer.addCrd("late.example.com", crdBody("late.example.com")),
      /crd entries must come before object/,
    );
    await writer.addNamespace("ns", namespaceBody("ns"));
    await expectInvalid(writer.addNamespace("ns", namespaceBody("ns")), /already in the archive/);
    await expectInvalid(
      writer.addObject({ ...g, name: "late" }, objectBody({ ...g, name: "late" })),
      /object entries must come before namespace/,
    );
    await expectInvalid(
      writer.addObject({ ...g, name: "h" }, objectBody({ ...g, name: "x" })),
      /metadata\.name is "x"/,
    );
    await expectInvalid(writer.addObject(g, Buffer.from("not json")), /not a single JSON object/);
    await expectInvalid(writer.addObject({ ...g, name: "Bad" }, objectBody(g)), /not a lowercase DNS name/);
    await expectInvalid(writer.addObject(g, objectBody(g), { uid: "a\nb" }), /not a valid uid/);
    await writer.addNamespace("ns2", namespaceBody("ns2"));
    const totals = await writer.finish();
    expect(totals.counts).toEqual({ crds: 0, namespaces: 2, objects: 3 });
    await expectInvalid(writer.addObject({ ...g, name: "i" }, objectBody({ ...g, name: "i" })), /finished/);
    expect((await verifyArchive([await consumed], expectation(totals))).objects).toBe(3);
    expect(await readdir(dir)).toEqual([]); // the spooled index is gone
  });

  it("abort destroys the stream with the error and removes the spooled index", async () => {
    const writer = new ArchiveWriter(SNAPSHOT_ID, { tmpDir: dir });
    const consumed = drain(writer.stream).then(
      () => "completed",
      (e: unknown) => e,
    );
    for (let i = 0; i < 5000; i++) {
      const ref = { ...widgets, namespace: "ns", name: `o${i}` };
      await writer.addObject(ref, objectBody(ref));
    }
    expect((await readdir(dir)).length).toBe(1);
    const boom = new Error("upload failed");
    await writer.abort(boom);
    expect(await consumed).toBe(boom);
    await expect(writer.addCrd("x.example.com", crdBody("x.example.com"))).rejects.toBe(boom);
    await expect(writer.finish()).rejects.toBe(boom);
    expect(await readdir(dir)).toEqual([]);
  });

  it("is aborted by its signal, and a failing consumer fails pending work", async () => {
    const controller = new AbortController();
    const writer = new ArchiveWriter(SNAPSHOT_ID, { tmpDir: dir, signal: controller.signal });
    const consumed = drain(writer.stream).then(
      () => "completed",
      (e: unknown) => e,
    );
    await writer.addNamespace("ns", namespaceBody("ns"));
    controller.abort(new CrdBackupError("ABORTED", "interrupted"));
    expect(await consumed).toMatchObject({ code: "ABORTED", message: "interrupted" });
    await expect(writer.addNamespace("n2", namespaceBody("n2"))).rejects.toThrow("interrupted");

    const second = new ArchiveWriter(SNAPSHOT_ID, { tmpDir: dir });
    const failure = new Error("storage went away");
    second.stream.destroy(failure); // what an uploader does when it fails
    await expect(second.addNamespace("ns", namespaceBody("ns"))).rejects.toBe(failure);
    await expect(second.finish()).rejects.toBe(failure);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses an invalid snapshot ID", () => {
    expect(() => new ArchiveWriter("latest")).toThrow(/invalid snapshot ID/);
  });
});
