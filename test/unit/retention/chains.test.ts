import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { serializeManifest } from "../../../src/archive/manifest.ts";
import { emptyManifest } from "../support/manifests.ts";
import { listChains } from "../../../src/journal/chains.ts";
import { segmentKey } from "../../../src/journal/segment-key.ts";
import { decideChains, type ChainCandidate } from "../../../src/retention/chains.ts";
import { applyPolicy, type RetentionPolicy } from "../../../src/retention/policy.ts";
import { prune } from "../../../src/retention/prune.ts";
import { LocalBackend } from "../../../src/storage/local.ts";
import { archiveKey, manifestKey } from "../../../src/storage/layout.ts";

const H = 3600_000;
const CLUSTER = "c0ffee00-0000-4000-8000-000000000001";

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function store(): LocalBackend {
  const root = mkdtempSync(path.join(os.tmpdir(), "crd-backup-chains-"));
  roots.push(root);
  return new LocalBackend(root);
}

/** An empty snapshot taken at `at`: prune reads manifests only, so nothing else needs content. */
async function snapshotAt(storage: LocalBackend, at: Date): Promise<string> {
  const manifest = emptyManifest(CLUSTER, at, 60_000);
  const id = manifest.snapshotId;
  await storage.createExclusive(archiveKey(id), Buffer.from("x"));
  await storage.createExclusive(manifestKey(id), Buffer.from(serializeManifest(manifest)));
  return id;
}

/** One journal segment of a chain, as the recorder names it (only keys are read here). */
async function segment(storage: LocalBackend, base: string, seq: number, from: Date, to: Date) {
  const key = segmentKey({ cluster: CLUSTER, base, seq, from, to, sha256: "c".repeat(64), gap: false });
  await storage.createExclusive(key, Buffer.from("segment"));
}

const chain = (base: string, from: string, to: string): ChainCandidate => ({
  cluster: CLUSTER,
  base,
  from: new Date(from),
  to: new Date(to),
  segments: 1,
});

describe("journal chains in retention", () => {
  it("keeps the newest chain and every chain reaching into what the policy keeps, with their bases", () => {
    const snaps = [
      { id: "b1", time: new Date("2026-03-01T01:00:00Z"), complete: true },
      { id: "s1", time: new Date("2026-03-01T06:00:00Z"), complete: true },
      { id: "b2", time: new Date("2026-03-02T01:00:00Z"), complete: true },
      { id: "s2", time: new Date("2026-03-02T06:00:00Z"), complete: true },
      { id: "s3", time: new Date("2026-03-02T12:00:00Z"), complete: true },
      { id: "b3", time: new Date("2026-03-03T01:00:00Z"), complete: true },
      { id: "s4", time: new Date("2026-03-03T06:00:00Z"), complete: true },
      { id: "s5", time: new Date("2026-03-03T12:00:00Z"), complete: true },
    ];
    const chains = [
      chain("b1", "2026-03-01T01:01:00Z", "2026-03-02T01:10:00Z"),
      chain("b2", "2026-03-02T01:01:00Z", "2026-03-03T01:10:00Z"),
      chain("b3", "2026-03-03T01:01:00Z", "2026-03-03T13:00:00Z"),
    ];
    const run = (policy: RetentionPolicy) => {
      const decisions = applyPolicy(snaps, policy);
      const c = decideChains(decisions, chains, policy);
      return {
        snapshots: decisions.filter((d) => d.keep).map((d) => `${d.id}:${d.reasons.join("+")}`),
        chains: c.map((x) => `${x.base}:${x.keep ? x.reasons.map((r) => r.split(" ")[0]).join("+") : "-"}`),
      };
    };
    // keep-last 2 keeps s4 and s5: b3's chain is the newest and covers them, so b3 stays
    expect(run({ last: 2 })).toEqual({
      snapshots: ["s5:last", "s4:last", "b3:journal"],
      chains: ["b1:-", "b2:-", "b3:newest+within"],
    });
    // keep-daily 2 keeps s3 (day 2) and s5 (day 3): b2's chain reaches past s3, b1's ends before it
    expect(run({ daily: 2 }).chains).toEqual(["b1:-", "b2:within", "b3:newest+within"]);
    expect(run({ daily: 2 }).snapshots).toContain("b2:journal");
    // keep-within 36h of the newest recorded instant (03-03T13:00) reaches 03-02T01:00
    expect(run({ within: "36h" }).chains).toEqual(["b1:within", "b2:within", "b3:newest+within"]);
    expect(run({ within: "24h" }).chains).toEqual(["b1:-", "b2:within", "b3:newest+within"]);
  });

  it("with the shipped defaults over 20 simulated days: the recorded history never breaks and reaches back about 13 days", async () => {
    // the CronJob every 6 hours with --keep-last 4 --keep-daily 14 (deploy/cronjob.yaml), a
    // recorder in the same location with a new base every 24 hours and a segment every hour
    const storage = store();
    const policy: RetentionPolicy = { last: 4, daily: 14 };
    const start = Date.parse("2026-01-01T00:00:00Z");
    let base = "";
    let seq = 0;
    let lastTo = 0;
    const removedChains = new Set<string>();
    for (let t = start; t < start + 20 * 24 * H; t += H) {
      const now = new Date(t);
      if (base) {
        await segment(storage, base, ++seq, new Date(lastTo), now);
        lastTo = t;
      }
      if ((t - start) % (24 * H) === H) {
        const next = await snapshotAt(storage, now); // the recorder's new base, at 01:00
        // the old chain goes on until the new one follows: their windows overlap
        if (base) await segment(storage, base, seq + 1, new Date(lastTo), new Date(t + 61_000));
        base = next;
        seq = 0;
        lastTo = t + 60_000;
      }
      if ((t - start) % (6 * H) !== 0 || t === start) continue;
      await snapshotAt(storage, now);
      const report = await prune(storage, { policy, dryRun: false, graceMs: 0, now });
      for (const j of report.journal) removedChains.add(j.base);

      const chains = (await listChains(storage, CLUSTER, now)).filter((c) => c.baseManifest);
      // the chain being recorded is whole, with its base, at every prune
      const current = chains.find((c) => c.base === base);
      if (seq > 0) {
        expect(current, `at ${now.toISOString()}`).toBeDefined();
        expect(current!.segments.length).toBe(seq);
        expect(current!.broken).toBeUndefined();
      }
      // every hour back to 13 days (or the start) lies in a recoverable window
      const windows = chains.flatMap((c) => c.windows);
      const back = Math.max(start + 2 * H, t - 13 * 24 * H + 2 * H);
      for (let p = t - H; p >= back; p -= H) {
        const covered = windows.some((w) => w.from.getTime() <= p && p <= w.to.getTime());
        expect(covered, `${new Date(p).toISOString()} recoverable at ${now.toISOString()}`).toBe(true);
      }
    }
    // and retention still retires what is past its reach
    expect(removedChains.size).toBeGreaterThanOrEqual(4);
    const left = await listChains(storage, CLUSTER);
    expect(left.length).toBeLessThanOrEqual(16);
  }, 120_000);
});
