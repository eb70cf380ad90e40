import { describe, expect, it } from "vitest";
import { KeptEntries, MAX_KEPT_BYTES } from "../../../src/restore/kept-entries.ts";

const ref = { group: "example.com", version: "v1", plural: "widgets", namespace: "ns", name: "a" };
const entryOf = (body: Buffer, uid = "u-1") => ({ ref, record: { uid, ownerUids: ["o-1"] }, body });

describe("KeptEntries", () => {
  it("keeps who each decided object is, and a copy of the body only where writing reads it", () => {
    const kept = new KeptEntries();
    const chunk = Buffer.from('xx{"a":1}{"b":2}yy');
    const written = chunk.subarray(2, 9);
    expect(kept.add(0, entryOf(written), "create", false)).toBe(true);
    expect(kept.add(3, entryOf(chunk.subarray(9, 16), "u-2"), "unchanged", false)).toBe(true);
    const all = kept.entries()!;
    expect(all.map((k) => k.ordinal)).toEqual([0, 3]);
    // a copy, not a view that keeps the reader's whole chunk
    chunk.fill(0x20);
    expect(all[0]!.entry.body.toString()).toBe('{"a":1}');
    expect(all[0]!.entry.record).toEqual({ uid: "u-1", ownerUids: ["o-1"] });
    expect(all[1]!.entry.body.length).toBe(0);
    expect(all[1]!.entry.ref).toEqual(ref);
  });

  it("keeps every body when modifiers read them", () => {
    const kept = new KeptEntries();
    kept.add(0, entryOf(Buffer.from("{}")), "unchanged", true);
    expect(kept.entries()![0]!.entry.body.toString()).toBe("{}");
  });

  it("keeps nothing once the bodies pass the budget: writing then reads the archive", () => {
    const kept = new KeptEntries();
    const half = Buffer.alloc(MAX_KEPT_BYTES / 2 + 1);
    expect(kept.add(0, entryOf(half), "update", false)).toBe(true);
    expect(kept.add(1, entryOf(half), "update", false)).toBe(false);
    expect(kept.entries()).toBeUndefined();
    expect(kept.add(2, entryOf(Buffer.from("{}")), "create", false)).toBe(false);
    expect(kept.entries()).toBeUndefined();
  });
});
