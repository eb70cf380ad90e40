import { Readable } from "node:stream";
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import type { JournalRecord } from "../../../src/journal/segment-format.ts";
import { readSegment } from "../../../src/journal/segment-reader.ts";
import { SegmentBuilder } from "../../../src/journal/segment-writer.ts";
import { parseSegmentKey, segmentKey } from "../../../src/journal/segment-key.ts";
import { generateKey, parseIdentities } from "../../../src/crypto/keys.ts";

const CLUSTER = "8e6f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
const BASE = "20261203T052000Z-1a2b3c4d";
const from = new Date("2026-12-03T05:20:05.000Z");
const to = new Date("2026-12-03T05:20:10.000Z");
const BIG =
  '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"n":9223372036854775807}}';

function records(): JournalRecord[] {
  const key = {
    kind: "object" as const,
    group: "example.com",
    version: "v1",
    plural: "widgets",
    namespace: "ns",
    name: "w",
  };
  return [
    { t: "2026-12-03T05:20:06.000Z", op: "put", ...key, uid: "u1", rv: "10", body: Buffer.from(BIG) },
    {
      t: "2026-12-03T05:20:07.000Z",
      op: "resync",
      phase: "begin",
      kind: "object",
      group: "example.com",
      version: "v1",
      plural: "widgets",
      rv: "",
    },
    { t: "2026-12-03T05:20:08.000Z", op: "delete", ...key, uid: "u1", rv: "11" },
    {
      t: "2026-12-03T05:20:09.000Z",
      op: "gap",
      from: "2026-12-03T05:20:06.500Z",
      to: "2026-12-03T05:20:09.000Z",
      reason: "watch expired (410 Gone)",
      resources: ["widgets.example.com"],
    },
  ];
}

async function encode(rs = records(), prev: string | null = "a".repeat(64)) {
  const b = new SegmentBuilder();
  for (const r of rs) b.add(r);
  return b.encode(
    { cluster: CLUSTER, base: BASE, seq: 2, prev, from, to },
    { "widgets.example.com/v1": "11" },
  );
}

async function readAll(
  bytes: Buffer,
  meta: ReturnType<typeof parseSegmentKey>,
  prev: string | null,
  keys?: { identities: string[]; sources: string[] },
) {
  const out: JournalRecord[] = [];
  const gen = readSegment(Readable.from([bytes]), { ...meta!, prev }, keys);
  for (;;) {
    const n = await gen.next();
    if (n.done) return { records: out, trailer: n.value };
    out.push(n.value);
  }
}

describe("journal segments", () => {
  it("round-trips records, bodies byte for byte (int64 beyond 2^53), and names the gap in the key", async () => {
    const seg = await encode();
    expect(seg.key).toBe(segmentKey(seg.meta));
    expect(seg.key).toMatch(
      /^journal\/8e6f.*\/20261203T052000Z-1a2b3c4d\/00000002-20261203T052005\.000Z-20261203T052010\.000Z-[0-9a-f]{64}\.gap\.jsonl\.gz$/,
    );
    const meta = parseSegmentKey(seg.key);
    expect(meta).toEqual(seg.meta);
    const { records: got, trailer } = await readAll(seg.bytes, meta, "a".repeat(64));
    expect(got).toHaveLength(4);
    expect(got[0]!.op === "put" && got[0]!.body.toString()).toBe(BIG);
    expect(got.map((r) => r.op)).toEqual(["put", "resync", "delete", "gap"]);
    expect(trailer).toEqual({ op: "end", records: 4, rvs: { "widgets.example.com/v1": "11" } });
  });

  it("refuses a segment whose previous-segment hash does not match the chain", async () => {
    const seg = await encode();
    await expect(readAll(seg.bytes, parseSegmentKey(seg.key), "b".repeat(64))).rejects.toThrow(
      /previous-segment hash/,
    );
  });

  it("refuses altered bytes, a truncated stream and a record outside the window", async () => {
    const seg = await encode();
    const meta = parseSegmentKey(seg.key);
    const plain = zlib
      .gunzipSync(seg.bytes)
      .toString("latin1")
      .replace("9223372036854775807", "9223372036854775806");
    await expect(readAll(zlib.gzipSync(Buffer.from(plain, "latin1")), meta, "a".repeat(64))).rejects.toThrow(
      /SHA-256/,
    );
    await expect(readAll(seg.bytes.subarray(0, seg.bytes.length - 20), meta, "a".repeat(64))).rejects.toThrow(
      /journal segment/,
    );
    const late = records()
      .slice(0, 1)
      .map((r) => ({ ...r, t: "2026-12-03T05:20:11.000Z" }));
    const bad = await encode(late);
    await expect(readAll(bad.bytes, parseSegmentKey(bad.key), "a".repeat(64))).rejects.toThrow(
      /outside the segment's window/,
    );
  });

  it("ignores keys that are not segments", () => {
    expect(parseSegmentKey("journal/x/notabase/00000001-a-b-c.jsonl.gz")).toBeUndefined();
    expect(parseSegmentKey("snapshots/20261203T052000Z-1a2b3c4d/manifest.json")).toBeUndefined();
  });

  it("encrypts a segment to age recipients: the key says so, only a matching identity reads it, tampering is caught", async () => {
    const key = await generateKey();
    const other = await generateKey();
    const keys = (k: { file: string }) => ({
      identities: parseIdentities(k.file, "test"),
      sources: ["test"],
    });
    const b = new SegmentBuilder();
    for (const r of records()) b.add(r);
    const seg = await b.encode(
      { cluster: CLUSTER, base: BASE, seq: 2, prev: null, from, to },
      {},
      { recipients: [key.recipient] },
    );
    expect(seg.key).toMatch(/\.gap\.jsonl\.gz\.age$/);
    expect(seg.bytes.toString("latin1")).not.toContain("widgets");
    const meta = parseSegmentKey(seg.key);
    expect(meta?.encrypted).toBe(true);
    const { records: got } = await readAll(seg.bytes, meta, null, keys(key));
    expect(got[0]!.op === "put" && got[0]!.body.toString()).toBe(BIG);
    await expect(readAll(seg.bytes, meta, null)).rejects.toThrow(/encrypted: give --identity/);
    await expect(readAll(seg.bytes, meta, null, keys(other))).rejects.toThrow(/none of the given identities/);
    const flipped = Buffer.from(seg.bytes);
    flipped[flipped.length - 40]! ^= 1;
    await expect(readAll(flipped, meta, null, keys(key))).rejects.toMatchObject({ code: "ARCHIVE_INVALID" });
  });
});
