import { gunzipSync, gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  buildKeyIndex,
  mayHold,
  MAX_INDEX_BYTES,
  objectMember,
  parseKeyIndex,
} from "../../../src/journal/key-index.ts";
import { readSegment, readSegmentHeader } from "../../../src/journal/segment-reader.ts";
import { SegmentBuilder } from "../../../src/journal/segment-writer.ts";
import type { JournalRecord } from "../../../src/journal/segment-format.ts";
import { place, widgetPut } from "./fixture.ts";

const put = (name: string): JournalRecord =>
  widgetPut(name, "2026-12-03T05:01:00.000Z", "1", Buffer.from(`{"metadata":{"name":"${name}"}}`));

describe("the segment key index", () => {
  it("holds every member; of 10,000 others about 1% look held", () => {
    const members = new Set(
      [...Array(2000).keys()].map((i) => objectMember("g.io", "widgets", "a", `w${i}`)),
    );
    const bits = parseKeyIndex(buildKeyIndex(members))!;
    for (const m of members) expect(mayHold(bits, [m])).toBe(true);
    const false_ = [...Array(10_000).keys()].filter((i) =>
      mayHold(bits, [objectMember("g.io", "widgets", "b", `w${i}`)]),
    ).length;
    expect(false_).toBeLessThan(300);
  });

  it("is left out when too large for a header line, and a malformed one reads as none", () => {
    const many = new Set([...Array((MAX_INDEX_BYTES * 8) / 10 + 100).keys()].map((i) => `o/g/p/a/${i}`));
    expect(buildKeyIndex(many)).toBeUndefined();
    expect(parseKeyIndex({ bloom: "AAAA", k: 3 })).toBeUndefined();
    expect(parseKeyIndex("x")).toBeUndefined();
  });

  it("rides in the header, read alone after the stored bytes' digest is checked", async () => {
    const b = new SegmentBuilder();
    b.add(put("w1"));
    const seg = await b.encode(place, {});
    const header = await readSegmentHeader(seg.bytes, { ...seg.meta, prev: null });
    const bits = parseKeyIndex(header.keys)!;
    expect(mayHold(bits, [objectMember("g.io", "widgets", "a", "w1")])).toBe(true);
    expect(mayHold(bits, [objectMember("g.io", "widgets", "a", "w2")])).toBe(false);
    // one flipped stored byte: refused before the header is trusted
    const bad = Buffer.from(seg.bytes);
    bad[bad.length - 5]! ^= 1;
    await expect(readSegmentHeader(bad, { ...seg.meta, prev: null })).rejects.toThrow(
      /SHA-256 of the stored bytes/,
    );
  });

  it("a segment without an index (written before it) still reads, header and records", async () => {
    const b = new SegmentBuilder();
    b.add(put("w1"));
    const seg = await b.encode(place, {});
    const lines = gunzipSync(seg.bytes).toString("latin1").split("\n");
    const header = JSON.parse(lines[0]!) as Record<string, unknown>;
    delete header["keys"];
    lines[0] = JSON.stringify(header);
    const old = gzipSync(Buffer.from(lines.join("\n"), "latin1"));
    const meta = { ...seg.meta, sha256: createHash("sha256").update(old).digest("hex"), prev: null };
    expect((await readSegmentHeader(old, meta)).keys).toBeUndefined();
    const records: JournalRecord[] = [];
    for await (const r of readSegment(Readable.from([old]), meta)) records.push(r);
    expect(records.map((r) => r.op === "put" && r.name)).toEqual(["w1"]);
  });
});
