import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { objectMember, resyncMember } from "../../../src/journal/key-index.ts";
import {
  RecordIndexBuilder,
  RecordIndexes,
  recordsOf,
  type RecordIndex,
} from "../../../src/journal/record-index.ts";
import type { JournalRecord } from "../../../src/journal/segment-format.ts";
import { readIndexedRecords, readSegment } from "../../../src/journal/segment-reader.ts";
import { SegmentBuilder } from "../../../src/journal/segment-writer.ts";
import { place, widgetPut } from "./fixture.ts";

const at = (i: number) => new Date(Date.UTC(2026, 11, 3, 5, 0, 1) + i * 10).toISOString();
const put = (i: number, name: string): JournalRecord =>
  widgetPut(
    name,
    at(i),
    String(i),
    // bodies large enough that records span many 64 KiB chunks of the decompressed stream
    Buffer.from(
      `{"metadata":{"name":"${name}"},"spec":{"i":${i},"n":9223372036854775807,"pad":"${"x".repeat(i % 3000)}"}}`,
    ),
  );

/** A segment of 3,000 records over 100 objects, with a re-list of the resource in the middle. */
async function segment() {
  const b = new SegmentBuilder();
  for (let i = 1; i <= 3000; i++) {
    if (i === 1500) {
      const resync = {
        op: "resync",
        kind: "object",
        group: "g.io",
        version: "v1",
        plural: "widgets",
        rv: "9",
      };
      b.add({ ...resync, t: at(i), phase: "begin" } as JournalRecord);
      b.add({ ...resync, t: at(i), phase: "end" } as JournalRecord);
    }
    b.add(put(i, `w${i % 100}`));
  }
  return b.encode(place, {});
}

async function indexOf(
  seg: Awaited<ReturnType<typeof segment>>,
): Promise<{ index: RecordIndex; all: JournalRecord[] }> {
  const builder = new RecordIndexBuilder();
  const all: JournalRecord[] = [];
  for await (const r of readSegment(Readable.from([seg.bytes]), { ...seg.meta, prev: null }, undefined, {
    index: builder,
  }))
    all.push(r);
  return { index: builder.finish(null), all };
}

describe("a segment's record index", () => {
  it("seeks to exactly the records of the wanted object and resource, bodies byte for byte", async () => {
    const seg = await segment();
    const { index, all } = await indexOf(seg);
    const wanted = [objectMember("g.io", "widgets", "a", "w7"), resyncMember("g.io", "widgets")];
    const got: JournalRecord[] = [];
    for await (const r of readIndexedRecords(seg.bytes, seg.meta, index, recordsOf(index, wanted)))
      got.push(r);
    const expected = all.filter((r) => r.op === "resync" || ("name" in r && r.name === "w7"));
    const plain = (rs: JournalRecord[]) =>
      rs.map((r) => ({ ...r, body: "body" in r ? r.body.toString() : undefined }));
    expect(got.length).toBe(32);
    expect(plain(got)).toEqual(plain(expected));
    // written in frames (gzip members): read from the member holding each record
    expect(index.frames!.gz.length).toBeGreaterThan(10);
    // a segment of one member (as written before frames) is inflated from its start
    const whole: JournalRecord[] = [];
    const { frames: _, ...unframed } = index;
    for await (const r of readIndexedRecords(seg.bytes, seg.meta, unframed, recordsOf(index, wanted)))
      whole.push(r);
    expect(plain(whole)).toEqual(plain(expected));
  });

  it("refuses a record that is not the one the index names at its offset", async () => {
    const seg = await segment();
    const { index } = await indexOf(seg);
    const [first] = recordsOf(index, [objectMember("g.io", "widgets", "a", "w7")]);
    const wrong = [{ offset: first!.offset, hash: first!.hash ^ 1 }];
    const read = async () => {
      for await (const _ of readIndexedRecords(seg.bytes, seg.meta, index, wrong)) void _;
    };
    await expect(read()).rejects.toThrow(/not the one indexed there/);
  });

  it("refuses stored bytes other than those indexed, even where it reads no record", async () => {
    const seg = await segment();
    const { index } = await indexOf(seg);
    const bad = Buffer.from(seg.bytes);
    bad[bad.length - 40]! ^= 1;
    for (const members of [
      [objectMember("g.io", "widgets", "a", "w7")],
      [objectMember("g.io", "widgets", "a", "none")],
    ]) {
      const read = async () => {
        for await (const _ of readIndexedRecords(bad, seg.meta, index, recordsOf(index, members))) void _;
      };
      await expect(read()).rejects.toThrow(/SHA-256 of the stored bytes/);
    }
  });

  it("a trailer's malformed frames make the segment invalid", async () => {
    const seg = await segment();
    const lines = gunzipSync(seg.bytes).toString("latin1").split("\n");
    const trailer = JSON.parse(lines.at(-2)!) as Record<string, unknown>;
    expect((trailer["frames"] as number[][])[0]).toEqual([0, 0]);
    for (const frames of [
      [
        [0, 0],
        [10, 0],
      ],
      [[5, 5]],
      [],
    ]) {
      lines[lines.length - 2] = JSON.stringify({ ...trailer, frames });
      const bytes = gzipSync(Buffer.from(lines.join("\n"), "latin1"));
      const meta = { ...seg.meta, sha256: createHash("sha256").update(bytes).digest("hex"), prev: null };
      const read = async () => {
        for await (const _ of readSegment(Readable.from([bytes]), meta)) void _;
      };
      await expect(read()).rejects.toThrow(/malformed trailer frames/);
    }
  });

  it("is kept only for the previous segment it was verified after, and within its budget", async () => {
    const seg = await segment();
    const { index } = await indexOf(seg);
    const size = 2 * (index.hashes.byteLength + index.frames!.gz.byteLength);
    const indexes = new RecordIndexes(2 * size); // two segments;
    indexes.set("one", index);
    expect(indexes.get("one", null)).toBe(index);
    expect(indexes.get("one", "0".repeat(64))).toBeUndefined();
    indexes.set("two", index);
    expect(indexes.full).toBe(true);
    indexes.set("three", index);
    expect(indexes.has("three")).toBe(false);
  });
});
