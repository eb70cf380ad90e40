/**
 * prune and delete with journal chains: a chain goes with its base (after the base's manifest),
 * a chain whose base is gone goes at the next prune, a kept base keeps its chain.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SegmentBuilder } from "../../src/journal/segment.ts";
import { LocalBackend } from "../../src/storage/local.ts";
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

describe("prune and delete with journal chains", () => {
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
    await chain(storage, cluster, old, new Date(m.finishedAt), 3);
    await chain(storage, cluster, kept, new Date((await readManifest(storage, kept)).finishedAt), 2);
    // a chain whose base is already gone (a delete interrupted between the two)
    const gone = "20200101T000000Z-00000000";
    await chain(storage, cluster, gone, new Date("2020-01-01T00:00:10Z"), 1);
    expect(await journalKeys(storage)).toHaveLength(6);

    const dry = await runCli(["prune", "--storage", dir, "--keep-last", "1", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would remove the journal of ${old} (cluster ${cluster}): 3 segments`);
    expect(dry.stdout).toContain(`would remove the journal of ${gone} (cluster ${cluster}): 1 segments`);
    expect(dry.stdout).not.toContain(`journal of ${kept}`);
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
});
