import { describe, expect, it } from "vitest";
import { applyPolicy, type Candidate } from "../../../src/retention/policy.ts";
import { durationBefore } from "../../../src/units/duration.ts";

const at = (iso: string, complete = true): Candidate => ({ id: iso, time: new Date(iso), complete });
const kept = (snapshots: Candidate[], policy: Parameters<typeof applyPolicy>[1]) =>
  applyPolicy(snapshots, policy)
    .filter((d) => d.keep)
    .map((d) => d.id)
    .sort();

// every 6 hours from 2026-10-01 to 2026-11-22
const series: Candidate[] = [];
for (let t = Date.parse("2026-10-01T00:00:00Z"); t <= Date.parse("2026-11-22T18:00:00Z"); t += 6 * 3600_000)
  series.push(at(new Date(t).toISOString()));

describe("retention policy (restic semantics)", () => {
  it("--keep-last n keeps the n newest", () => {
    expect(kept(series, { last: 3 })).toEqual([
      "2026-11-22T06:00:00.000Z",
      "2026-11-22T12:00:00.000Z",
      "2026-11-22T18:00:00.000Z",
    ]);
  });

  it("--keep-daily n keeps the newest snapshot of each of the n newest days that have one", () => {
    expect(kept(series, { daily: 3 })).toEqual([
      "2026-11-20T18:00:00.000Z",
      "2026-11-21T18:00:00.000Z",
      "2026-11-22T18:00:00.000Z",
    ]);
    // days without snapshots do not use up the count
    const gappy = [at("2026-11-01T10:00:00Z"), at("2026-11-05T10:00:00Z"), at("2026-11-05T09:00:00Z")];
    expect(kept(gappy, { daily: 2 })).toEqual(["2026-11-01T10:00:00Z", "2026-11-05T10:00:00Z"]);
  });

  it("--keep-weekly uses ISO weeks (Monday to Sunday), --keep-monthly calendar months", () => {
    // 2026-11-22 is a Sunday: same ISO week as Monday 2026-11-16
    expect(kept(series, { weekly: 2 })).toEqual(["2026-11-15T18:00:00.000Z", "2026-11-22T18:00:00.000Z"]);
    expect(kept(series, { monthly: 5 })).toEqual(["2026-10-31T18:00:00.000Z", "2026-11-22T18:00:00.000Z"]);
  });

  it("rules add up, and each kept snapshot says which rules keep it", () => {
    const d = applyPolicy(series, { last: 1, daily: 2, monthly: 2 });
    const newest = d.find((x) => x.id === "2026-11-22T18:00:00.000Z")!;
    expect(newest.reasons).toEqual(["last", "daily", "monthly"]);
    expect(
      d
        .filter((x) => x.keep)
        .map((x) => x.id)
        .sort(),
    ).toEqual(["2026-10-31T18:00:00.000Z", "2026-11-21T18:00:00.000Z", "2026-11-22T18:00:00.000Z"]);
    expect(d.filter((x) => !x.keep).every((x) => x.reasons.length === 0)).toBe(true);
  });

  it("--keep-within keeps everything within the duration of the newest snapshot (not of now)", () => {
    expect(kept(series, { within: "1d" })).toEqual([
      "2026-11-21T18:00:00.000Z",
      "2026-11-22T00:00:00.000Z",
      "2026-11-22T06:00:00.000Z",
      "2026-11-22T12:00:00.000Z",
      "2026-11-22T18:00:00.000Z",
    ]);
    expect(durationBefore("1y2m", new Date("2026-11-22T00:00:00Z")).toISOString()).toBe(
      "2025-09-22T00:00:00.000Z",
    );
    expect(durationBefore("2w3d4h", new Date("2026-11-22T00:00:00Z")).toISOString()).toBe(
      "2026-11-04T20:00:00.000Z",
    );
    expect(() => durationBefore("3 days", new Date())).toThrow(/--keep-within "3 days"/);
    expect(() => durationBefore("", new Date())).toThrow(/--keep-within/);
  });

  it("never lets partial snapshots push out the newest complete one", () => {
    const s = [
      at("2026-11-20T00:00:00Z"),
      at("2026-11-21T00:00:00Z", false),
      at("2026-11-22T00:00:00Z", false),
    ];
    const d = applyPolicy(s, { last: 2 });
    expect(d.filter((x) => x.keep).map((x) => [x.id, x.reasons])).toEqual([
      ["2026-11-22T00:00:00Z", ["last"]],
      ["2026-11-21T00:00:00Z", ["last"]],
      ["2026-11-20T00:00:00Z", ["newest complete"]],
    ]);
  });

  it("always keeps the newest snapshot, and refuses an empty policy", () => {
    for (const policy of [{ last: 1 }, { hourly: 1 }, { yearly: 1 }, { within: "1h" }])
      expect(kept(series, policy)).toContain("2026-11-22T18:00:00.000Z");
    expect(() => applyPolicy(series, {})).toThrow(/no retention policy/);
    expect(applyPolicy([], { last: 3 })).toEqual([]);
  });
});
