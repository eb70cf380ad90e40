/**
 * Journal chains in a storage location. prune and delete: a chain goes with its base (after the
 * base's manifest), a chain whose base is gone goes at the next prune, a kept base keeps its
 * chain. Several clusters' journals: --at needs --cluster to say whose.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SegmentBuilder } from "../../src/journal/segment-writer.ts";
import { LocalBackend } from "../../src/storage/local.ts";
import { plainManifest, serializeManifest } from "../../src/archive/manifest.ts";
import { manifestKey, newSnapshotId } from "../../src/storage/layout.ts";
import { readManifest } from "../../src/storage/snapshots.ts";
import { runCli } from "../support/cli.ts";
import { uniqueName } from "../support/cluster.ts";

async function chain(
  storage: LocalBackend,
  cluster: string,
  base: string,
  from: Date,
  n: number,
): Promise<void> {
  let prev: string | null = null;
  for (let seq = 1; seq <= n; seq++) {
    const b = new SegmentBuilder();
    const at = (s: number) => new Date(from.getTime() + s * 1000);
    b.add({
      t: at(5 * seq - 1).toISOString(),
      op: "delete",
      kind: "namespace",
      name: `ns-${seq}`,
      uid: `u-${seq}`,
      rv: String(seq),
    });
    const seg = await b.encode({ cluster, base, seq, prev, from: at(5 * seq - 5), to: at(5 * seq) }, {});
    await storage.write(seg.key, Readable.from([seg.bytes]));
    prev = seg.sha256;
  }
}

async function journalKeys(storage: LocalBackend): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of storage.list("journal/")) keys.push(key);
  return keys;
}

describe("journal chains in a location: prune, delete, several clusters", () => {
  it("prune removes the chains of bases it removes and of bases already gone, after the bases; delete takes a base's chain", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-pit-retention-"));
    const storage = new LocalBackend(dir);
    // two real (empty) bases of the test cluster
    const group = `${uniqueName("none")}.example.com`;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
      expect(snap.code, snap.stderr).toBe(0);
      ids.push((JSON.parse(snap.stdout) as { id: string }).id);
    }
    const [old, kept] = ids as [string, string];
    const m = await readManifest(storage, old);
    const cluster = m.cluster.uid;
    // a chain that ended before the kept snapshot began: outside what --keep-last 1 keeps
    await chain(storage, cluster, old, new Date(Date.parse(m.finishedAt) - 30_000), 3);
    await chain(storage, cluster, kept, new Date((await readManifest(storage, kept)).finishedAt), 2);
    // a chain whose base is already gone (a delete interrupted between the two)
    const gone = "20200101T000000Z-00000000";
    await chain(storage, cluster, gone, new Date("2020-01-01T00:00:10Z"), 1);
    expect(await journalKeys(storage)).toHaveLength(6);

    const dry = await runCli(["prune", "--storage", dir, "--keep-last", "1", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would remove the journal of ${old} (cluster ${cluster}): 3 segments`);
    expect(dry.stdout).toContain(`would remove the journal of ${gone} (cluster ${cluster}): 1 segments`);
    expect(dry.stdout).not.toContain(`remove the journal of ${kept}`);
    expect(dry.stdout).toMatch(new RegExp(`keep the journal of ${kept} \\(2 segments, .*\\): newest chain`));
    expect(await journalKeys(storage)).toHaveLength(6);

    const res = await runCli(["prune", "--storage", dir, "--keep-last", "1", "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as { journal: { base: string; segments: number }[] };
    expect(report.journal.map((j) => [j.base, j.segments])).toEqual([
      [gone, 1],
      [old, 3],
    ]);
    const left = await journalKeys(storage);
    expect(left).toHaveLength(2);
    expect(left.every((k) => k.startsWith(`journal/${cluster}/${kept}/`))).toBe(true);
    const list = await runCli(["list", "--storage", dir, "-o", "json"]);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ id: kept, journal: expect.objectContaining({ segments: 2 }) }),
    ]);

    const del = await runCli(["delete", kept, "--allow-last", "--storage", dir]);
    expect(del.code, del.stderr).toBe(0);
    expect(await journalKeys(storage)).toEqual([]);
  }, 120_000);

  it("a location holding several clusters' journals: --at needs --cluster, and --cluster picks one", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-pit-clusters-"));
    const storage = new LocalBackend(dir);
    const group = `${uniqueName("none")}.example.com`;
    const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    const m = plainManifest(await readManifest(storage, id));
    await chain(storage, m.cluster.uid, id, new Date(m.finishedAt), 2);
    // another cluster's base (its manifest is all the planning reads) and chain
    const otherId = newSnapshotId(new Date(m.startedAt));
    const other = { ...m, snapshotId: otherId, cluster: { ...m.cluster, uid: "0ther-cluster-uid" } };
    await storage.createExclusive(manifestKey(otherId), Buffer.from(serializeManifest(other)));
    await chain(storage, "0ther-cluster-uid", otherId, new Date(m.finishedAt), 1);

    const to = path.join(dir, "..", `${path.basename(dir)}-export`);
    const ambiguous = await runCli(["export", "--at", "now", "--storage", dir, "--to", to]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr.trim().split("\n")).toHaveLength(1);
    expect(ambiguous.stderr).toMatch(/--at is ambiguous: .* holds journals of 2 clusters/);
    expect(ambiguous.stderr).toContain(`cluster ${m.cluster.uid}: `);
    expect(ambiguous.stderr).toContain("cluster 0ther-cluster-uid: ");
    expect(ambiguous.stderr).toContain("say --cluster <uid prefix>");

    const picked = await runCli([
      "export",
      "--at",
      "now",
      "--cluster",
      m.cluster.uid.slice(0, 8),
      "--storage",
      dir,
      "--to",
      to,
    ]);
    expect(picked.code, picked.stderr).toBe(0);
    expect(picked.stdout).toMatch(/^exported snapshot \d{8}T\d{6}Z-[0-9a-f]{8} to /);
    const unknown = await runCli([
      "export",
      "--at",
      "now",
      "--cluster",
      "zzz",
      "--storage",
      dir,
      "--to",
      `${to}2`,
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no journal of a cluster zzz/);
    const misplaced = await runCli(["export", id, "--cluster", "zzz", "--storage", dir, "--to", `${to}3`]);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toMatch(/--cluster goes with --at/);
  }, 120_000);
});
