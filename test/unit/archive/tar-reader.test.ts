import { gunzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { readTar, TarFormatError } from "../../../src/archive/tar-reader.ts";
import { drain, objectBody, paxRecord, TAR_END, tarMember, writeArchive } from "./helpers.ts";

const widgets = { group: "example.com", version: "v1", plural: "widgets" };

/** A writer's archive with bodies of many sizes (around block and chunk boundaries), as plain tar. */
async function sample(): Promise<Buffer> {
  const { bytes } = await writeArchive(async (w) => {
    for (let i = 0; i < 40; i++) {
      const ref = { ...widgets, namespace: "ns", name: `w-${String(i).padStart(3, "0")}` };
      await w.addObject(ref, objectBody(ref, { spec: { fill: "x".repeat(i * 97) } }));
    }
  });
  return gunzipSync(bytes);
}

/** The entries as tar-stream, an independent general-purpose parser, reads them. */
async function reference(data: Buffer) {
  const extract = tar.extract();
  extract.end(data);
  const out: { name: string; type: string; pax: unknown; body: string }[] = [];
  for await (const e of extract as unknown as AsyncIterable<AsyncIterable<Buffer> & { header: tar.Header }>) {
    out.push({
      name: e.header.name,
      type: e.header.type!,
      pax: e.header.pax,
      body: (await drain(e)).toString(),
    });
  }
  return out;
}

async function ours(chunks: Buffer[]) {
  const out: { name: string; type: string; pax: unknown; body: string }[] = [];
  let i = 0;
  async function* source() {
    yield* chunks; // as gunzip hands them over
  }
  for await (const { entry, body } of readTar(source())) {
    // alternate the two ways of reading a body, and skip one now and then
    const text =
      i % 3 === 0
        ? (await body.all()).toString()
        : i % 3 === 1
          ? (await drain(body.pieces())).toString()
          : undefined;
    out.push({ name: entry.name, type: entry.type, pax: entry.pax, body: text ?? "" });
    i++;
  }
  return out;
}

const split = (data: Buffer, size: number) =>
  Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size));

describe("the tar reader", () => {
  it("reads what tar-stream reads, however the bytes are chunked", async () => {
    const data = await sample();
    const want = await reference(data);
    expect(want.length).toBe(42); // header, 40 objects, index
    for (const size of [1, 7, 511, 512, 513, 4096, 65536, data.length]) {
      const got = await ours(split(data, size));
      expect(got.map((e) => [e.name, e.type, e.pax])).toEqual(want.map((e) => [e.name, e.type, e.pax]));
      got.forEach((e, i) => i % 3 !== 2 && expect(e.body, `${size}: ${e.name}`).toBe(want[i]!.body));
    }
  });

  it("calls a stream that stops before the end-of-archive block truncated, and a bad checksum a bad header", async () => {
    const data = await sample();
    for (const cut of [100, 512, 1536, data.length - 1024]) {
      await expect(ours([data.subarray(0, cut)])).rejects.toMatchObject({ kind: "truncated" });
    }
    const bad = Buffer.from(data);
    bad[0] = bad[0]! ^ 1;
    await expect(ours([bad])).rejects.toBeInstanceOf(TarFormatError);
    await expect(ours([bad])).rejects.toMatchObject({ kind: "header" });
  });

  it("keeps only the pax records the format defines (path, CRDBACKUP.sha256, CRDBACKUP.uid)", async () => {
    const records = [
      paxRecord("mtime", "1.5"),
      paxRecord("path", "crds/a.example.com.json"),
      paxRecord("__proto__", "x"),
      paxRecord("CRDBACKUP.sha256", "0".repeat(64)),
      paxRecord("CRDBACKUP.other", "y"),
      paxRecord("CRDBACKUP.uid", "u-1"),
      paxRecord("comment", "z".repeat(1000)),
    ].join("");
    const data = Buffer.concat([
      tarMember("PaxHeader", "x", Buffer.from(records)),
      tarMember("ignored", "0", Buffer.from("{}")),
      TAR_END,
    ]);
    const got = await ours([data]);
    expect(got).toHaveLength(1);
    expect(got[0]!.name).toBe("crds/a.example.com.json");
    expect(got[0]!.pax).toEqual({
      path: "crds/a.example.com.json",
      "CRDBACKUP.sha256": "0".repeat(64),
      "CRDBACKUP.uid": "u-1",
    });
    expect(Object.getPrototypeOf(got[0]!.pax)).toBe(Object.prototype);
  });
});
