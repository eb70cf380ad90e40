import { gunzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { ArchiveWriter, verifyArchive, type EntryBody, type ObjectRef } from "../../../src/archive/index.ts";
import { describeEntry, indexLine } from "../../../src/archive/records.ts";
import {
  SNAPSHOT_ID,
  crdBody,
  drain,
  expectInvalid,
  namespaceBody,
  objectBody,
  sha256,
  unpack,
  writeArchive,
} from "./helpers.ts";

const MTIME = new Date("2026-11-22T04:15:00Z");
const widgets = { group: "example.com", version: "v1", plural: "widgets" };

/** The same entries packed by tar-stream, the general-purpose packer the writer replaced. */
async function referenceTar(entries: { name: string; body: Buffer; uid?: string }[]): Promise<Buffer> {
  const p = tar.pack();
  const out = drain(p as unknown as AsyncIterable<Buffer>);
  for (const e of entries) {
    const pax: Record<string, string> = { "CRDBACKUP.sha256": sha256(e.body) };
    if (e.uid !== undefined) pax["CRDBACKUP.uid"] = e.uid;
    await new Promise<void>((resolve, reject) =>
      p.entry({ name: e.name, type: "file", mode: 0o644, mtime: MTIME, pax }, e.body, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  p.finalize();
  return out;
}

/** The body of a copy of `ref` named `<name>.2`. */
const renamed = (ref: ObjectRef, body: Buffer) =>
  Buffer.from(body.toString().replace(`"name":"${ref.name}"`, `"name":"${ref.name}.2"`));

/** A body the writer has copy itself into its batch, as a snapshot's cleaned objects do. */
const copying = (body: Buffer): EntryBody => ({ length: body.length, copyTo: (to, at) => body.copy(to, at) });

describe("archive writer, tar stream", () => {
  it("writes the bytes tar-stream's packer wrote, block for block", async () => {
    const long = { ...widgets, namespace: "n".repeat(63), name: `long-${"x".repeat(120)}` }; // name > 100 bytes
    const big = { ...widgets, namespace: "ns", name: "big" }; // a body larger than a write batch
    const exact = { ...widgets, namespace: "ns", name: "exact" };
    const unicode = { ...widgets, name: "unicode" };
    const bodies = new Map<ObjectRef, Buffer>([
      [long, objectBody(long)],
      [big, objectBody(big, { spec: { blob: "b".repeat(200 * 1024) } })],
      [exact, objectBody(exact)],
      [unicode, objectBody(unicode, { spec: { text: "héllo ✓ 😀 \u2028 日本語" } })],
    ]);
    // pad one body to exactly 1024 bytes: no padding block after it
    const e = bodies.get(exact)!;
    bodies.set(exact, objectBody(exact, { pad: "p".repeat(1024 - e.length - ',"pad":""'.length) }));
    expect(bodies.get(exact)!.length).toBe(1024);

    const { bytes } = await writeArchive(async (w) => {
      await w.addCrd("widgets.example.com", crdBody("widgets.example.com"), { uid: "crd-uid" });
      // bodies that copy themselves go straight into the write batch, Buffers are copied or passed
      // on: the same bytes
      for (const [i, [ref, body]] of [...bodies].entries()) {
        const inBatch = i % 2 === 0;
        await w.addObject(ref, inBatch ? copying(body) : body, { uid: `uid-${ref.name.length}` });
        const copy = renamed(ref, body);
        await w.addObject({ ...ref, name: `${ref.name}.2` }, inBatch ? copy : copying(copy));
      }
      await w.addNamespace("ns", namespaceBody("ns"));
    });
    const entries = await unpack(bytes);
    const header = entries[0]!;
    const index = entries[entries.length - 1]!;
    const reference = await referenceTar([
      header,
      { name: "crds/widgets.example.com.json", body: crdBody("widgets.example.com"), uid: "crd-uid" },
      ...[...bodies].flatMap(([ref, body]) => {
        const name = `objects/example.com/v1/widgets/${ref.namespace ?? "_cluster"}/${ref.name}`;
        return [
          { name: `${name}.json`, body, uid: `uid-${ref.name.length}` },
          { name: `${name}.2.json`, body: renamed(ref, body) },
        ];
      }),
      { name: "namespaces/ns.json", body: namespaceBody("ns") },
      index,
    ]);
    expect(gunzipSync(bytes).equals(reference)).toBe(true);
  });

  it("takes an object's index fields from the caller, with the checks a parsed body gets", async () => {
    const ref = { ...widgets, namespace: "ns", name: "a" };
    const body = objectBody(ref, {}, ["owner-1"]);
    const fields = {
      name: "a",
      namespace: "ns",
      apiVersion: "example.com/v1",
      kind: "Widget",
      ownerReferences: [{ uid: "owner-1" }],
    };
    const writer = new ArchiveWriter(SNAPSHOT_ID, { mtime: MTIME, formatVersion: 1 });
    const consumed = drain(writer.stream);
    // a refused body was already copied into the write batch: it must leave no trace
    await expectInvalid(
      writer.addObject(ref, copying(body), { fields: { ...fields, name: "b" } }),
      /metadata\.name is "b"/,
    );
    await expectInvalid(
      writer.addObject(ref, body, { fields: { ...fields, apiVersion: "example.com/v2" } }),
      /apiVersion is "example.com\/v2"/,
    );
    await expectInvalid(
      writer.addObject(ref, body, { fields: { ...fields, kind: undefined } }),
      /kind is missing/,
    );
    await expectInvalid(
      writer.addObject(ref, body, { fields: { ...fields, ownerReferences: [{ uid: undefined }] } }),
      /ownerReference has no uid/,
    );
    await writer.addObject(ref, body, { uid: "u-a", fields });
    const totals = await writer.finish();
    const bytes = await consumed;
    expect((await verifyArchive([bytes], { snapshotId: SNAPSHOT_ID, ...totals })).objects).toBe(1);
    const entries = await unpack(bytes);
    const line = indexLine(
      describeEntry(entries[1]!.name, { kind: "object", ref }, body, sha256(body), "u-a"),
    );
    expect(entries[2]!.body.toString()).toBe(line); // the index, the same line a parse gives
  });
});

describe("index lines", () => {
  it("are what JSON.stringify writes for the record's fields in canonical order", () => {
    const object = {
      entry: 'objects/example.com/v1/widgets/ns/a"b.json',
      sha256: "0".repeat(64),
      size: 12,
      kind: "object" as const,
      uid: "u-1",
      apiVersion: "example.com/v1",
      resourceKind: "Widget",
      group: "example.com",
      version: "v1",
      plural: "widgets",
      namespace: "ns",
      name: 'a"b\u2028é',
      ownerUids: ["o-1", "o-2"],
    };
    // built in another order, with a field absent: the line still follows the canonical order
    const { uid: _uid, ...withoutUid } = object;
    const shuffled = Object.fromEntries(Object.entries(withoutUid).reverse()) as typeof withoutUid;
    expect(indexLine(object)).toBe(`${JSON.stringify(object)}\n`);
    expect(indexLine(shuffled)).toBe(`${JSON.stringify(withoutUid)}\n`);
    const crd = {
      entry: "crds/widgets.example.com.json",
      sha256: "1".repeat(64),
      size: 3,
      kind: "crd" as const,
      name: "w",
    };
    expect(indexLine(crd)).toBe(`${JSON.stringify(crd)}\n`);
  });
});
