/**
 * A bucket writer's forged dates (issue 21, item 5): a snapshot whose startedAt is not its id's
 * time, a snapshot dated ahead of this clock, a journal segment ending in 2099. None may steer
 * `latest`, retention or `--at now`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS } from "../../../src/archive/format.ts";
import { parseManifest, serializeManifest, type Manifest } from "../../../src/archive/manifest.ts";
import { emptyManifest } from "../support/manifests.ts";
import { listChains } from "../../../src/journal/chains.ts";
import { planPointInTime } from "../../../src/journal/replay/plan.ts";
import { findResumePoint } from "../../../src/journal/record/resume.ts";
import { segmentKey } from "../../../src/journal/segment-key.ts";
import { silentLogger } from "../../../src/report/log.ts";
import { prune } from "../../../src/retention/prune.ts";
import { LocalBackend } from "../../../src/storage/local.ts";
import { archiveKey, manifestKey } from "../../../src/storage/layout.ts";
import { listSnapshots, readManifest, resolveSnapshot } from "../../../src/storage/snapshots.ts";

const CLUSTER = "c0ffee00-0000-4000-8000-000000000002";
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function store(): LocalBackend {
  const root = mkdtempSync(path.join(os.tmpdir(), "crd-backup-forged-"));
  roots.push(root);
  return new LocalBackend(root);
}

const manifestAt = (at: Date) => emptyManifest(CLUSTER, at);

async function put(storage: LocalBackend, m: Manifest): Promise<string> {
  await storage.createExclusive(archiveKey(m.snapshotId), Buffer.from("x"));
  // serializeManifest checks what parseManifest checks: a forger writes the JSON by hand
  await storage.createExclusive(manifestKey(m.snapshotId), Buffer.from(JSON.stringify(m)));
  return m.snapshotId;
}

async function segment(storage: LocalBackend, base: string, seq: number, from: Date, to: Date) {
  const key = segmentKey({ cluster: CLUSTER, base, seq, from, to, sha256: "c".repeat(64), gap: false });
  await storage.createExclusive(key, Buffer.from("segment"));
}

describe("forged times", () => {
  it("a manifest whose startedAt is not its id's second, or that finished before it started, is refused", () => {
    const at = new Date("2026-11-22T04:15:00.123Z");
    const good = manifestAt(at);
    expect(parseManifest(serializeManifest(good)).startedAt).toBe(good.startedAt);
    const later = { ...good, startedAt: "2099-01-01T00:00:00Z", finishedAt: "2099-01-01T00:00:01Z" };
    expect(() => parseManifest(JSON.stringify(later))).toThrow(
      /startedAt is 2099-01-01T00:00:00Z, but the snapshot id names 2026-11-22T04:15:00/,
    );
    const backwards = { ...good, finishedAt: "2026-11-22T04:14:00Z" };
    expect(() => parseManifest(JSON.stringify(backwards))).toThrow(/finishedAt is before startedAt/);
  });

  it("a snapshot dated in the future is unreadable: not latest, never pruned, never counted by retention", async () => {
    const storage = store();
    const now = Date.now();
    const real = [
      await put(storage, manifestAt(new Date(now - 3 * 3600_000))),
      await put(storage, manifestAt(new Date(now - 3600_000))),
    ];
    const forged = await put(storage, manifestAt(new Date("2099-06-01T00:00:00Z")));
    // within the skew a writer's clock may run ahead: accepted
    const ahead = await put(storage, manifestAt(new Date(now + CLOCK_SKEW_MS / 2)));
    await expect(readManifest(storage, forged)).rejects.toThrow(
      /finishedAt 2099-06-01T00:00:01.000Z is in the future/,
    );
    expect((await readManifest(storage, ahead)).snapshotId).toBe(ahead);

    const unreadable: string[] = [];
    const listed = await listSnapshots(storage, (id) => unreadable.push(id));
    expect(listed.map((s) => s.id)).toEqual([...real, ahead]);
    expect(unreadable).toEqual([forged]);
    // latest never steps past a newer snapshot it cannot trust: it says so and names it
    await expect(resolveSnapshot(storage, "latest")).rejects.toThrow(
      new RegExp(`snapshot ${forged}: .*in the future.*name a snapshot id`),
    );

    const report = await prune(storage, { policy: { last: 1 }, dryRun: false, graceMs: 0 });
    expect(report.unreadable.map((u) => u.id)).toEqual([forged]);
    expect(report.clusters[0]!.keep.map((d) => d.id)).toEqual([ahead]);
    expect(await storage.stat(manifestKey(forged))).toBeTruthy();
  });

  it("a segment ending in the future ends its chain there: --at now, prune and a resuming recorder ignore it", async () => {
    const storage = store();
    const now = Date.now();
    const baseAt = new Date(now - 3600_000);
    const base = await put(storage, manifestAt(baseAt));
    const t = (ms: number) => new Date(baseAt.getTime() + 1000 + ms);
    await segment(storage, base, 1, t(0), t(60_000));
    await segment(storage, base, 2, t(60_000), t(120_000));
    await segment(storage, base, 3, t(120_000), new Date("2099-01-01T00:00:00.000Z"));

    const [chain] = await listChains(storage, CLUSTER);
    expect(chain!.windows.at(-1)!.to).toEqual(t(120_000));
    expect(chain!.broken?.message).toMatch(/ends at 2099-01-01T00:00:00.000Z, in the future/);
    const plan = await planPointInTime(storage, { at: "now" });
    expect(plan.at).toEqual(t(120_000));
    expect(plan.segments).toHaveLength(2);
    await expect(planPointInTime(storage, { at: new Date("2098-01-01T00:00:00Z") })).rejects.toThrow(
      /not in a recoverable window/,
    );
    // retention measures the chain by its honest end: kept as the newest chain, not as reaching 2099
    const report = await prune(storage, { policy: { within: "1h" }, dryRun: true, graceMs: 0 });
    expect(report.chains.map((c) => [c.base, c.to, c.reasons[0]])).toEqual([
      [base, t(120_000), "newest chain"],
    ]);
    // a recorder does not continue a chain that holds a segment from the future
    expect(await findResumePoint(storage, CLUSTER, silentLogger)).toBeUndefined();
  });
});
