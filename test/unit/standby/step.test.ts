import { describe, expect, it } from "vitest";
import type { Chain } from "../../../src/journal/chains.ts";
import { segmentKey, type SegmentKey } from "../../../src/journal/segment-key.ts";
import { nextStep, type ResumePoint } from "../../../src/standby/step.ts";

const CLUSTER = "c0ffee00-0000-4000-8000-000000000001";
const t = (s: number) => new Date(Date.UTC(2026, 11, 7, 10, 0, s));

/** A chain of `n` one-second segments from t(0), its base finished at t(0); `gaps` marks .gap segments by seq. */
function chain(
  base: string,
  n: number,
  options: { gaps?: number[]; from?: number; broken?: number } = {},
): Chain {
  const from = options.from ?? 0;
  const segments: SegmentKey[] = Array.from({ length: n }, (_, i) => ({
    cluster: CLUSTER,
    base,
    seq: i + 1,
    from: t(from + i),
    to: t(from + i + 1),
    sha256: String(i + 1).padStart(64, "0"),
    gap: options.gaps?.includes(i + 1) ?? false,
  }));
  const c: Chain = {
    cluster: CLUSTER,
    base,
    baseManifest: undefined,
    segments,
    gaps: [],
    windows: n > 0 ? [{ from: t(from), to: t(from + n) }] : [],
  };
  if (options.broken) c.broken = { key: segmentKey(segments[options.broken - 1]!), message: "missing" };
  return c;
}

const BASE1 = "20261207T100000Z-aaaaaaaa";
const BASE2 = "20261207T100100Z-bbbbbbbb";
const resumeAt = (c: Chain, seq: number): ResumePoint => ({
  cluster: c.cluster,
  base: c.base,
  segment: segmentKey(c.segments[seq - 1]!),
  at: c.segments[seq - 1]!.to.toISOString(),
});

describe("standby nextStep", () => {
  it("waits while there is no recoverable window", () => {
    expect(nextStep([], undefined).kind).toBe("wait");
    expect(nextStep([chain(BASE1, 0)], undefined).kind).toBe("wait");
  });

  it("re-syncs to the newest point without a resume point", () => {
    const c = chain(BASE1, 3);
    const step = nextStep([c], undefined);
    expect(step).toMatchObject({ kind: "resync", reason: "no resume point in the target", at: t(3) });
    if (step.kind === "resync") expect(segmentKey(step.last)).toBe(segmentKey(c.segments[2]!));
  });

  it("is current at the newest segment, and follows from the one after the resume point", () => {
    const c = chain(BASE1, 5);
    expect(nextStep([c], resumeAt(c, 5)).kind).toBe("current");
    expect(nextStep([c], resumeAt(c, 2))).toMatchObject({ kind: "follow", first: 2, at: t(5) });
  });

  it("re-syncs on a new chain, a resume segment gone, or a gap after the resume point", () => {
    const old = chain(BASE1, 3);
    const next = chain(BASE2, 2, { from: 60 });
    expect(nextStep([old, next], resumeAt(old, 3))).toMatchObject({
      kind: "resync",
      reason: "a new chain: the recorder started a new base",
    });
    const c = chain(BASE1, 4);
    expect(nextStep([c], { ...resumeAt(c, 2), segment: "journal/gone" })).toMatchObject({
      kind: "resync",
      reason: "the resume segment is no longer in the chain",
    });
    const gapped = chain(BASE1, 4, { gaps: [3] });
    expect(nextStep([gapped], resumeAt(gapped, 2))).toMatchObject({
      kind: "resync",
      reason: "a gap in the journal",
    });
    // a gap segment applied to its end is followed from; one applied only to its gap's start is not
    expect(nextStep([gapped], resumeAt(gapped, 3))).toMatchObject({ kind: "follow", first: 3 });
    const short = { ...resumeAt(gapped, 3), at: t(2).toISOString() };
    expect(nextStep([gapped], short)).toMatchObject({ kind: "resync", reason: "a gap in the journal" });
  });

  it("follows a broken chain only up to its break", () => {
    const c = chain(BASE1, 5, { broken: 4 });
    expect(nextStep([c], resumeAt(c, 1))).toMatchObject({ kind: "follow", first: 1, at: t(3) });
    expect(nextStep([c], resumeAt(c, 3)).kind).toBe("current");
    expect(nextStep([chain(BASE1, 2, { broken: 1 })], undefined).kind).toBe("wait");
  });
});
