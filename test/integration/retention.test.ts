import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { newSnapshotId } from "../../src/archive/format.ts";
import { plainManifest, serializeManifest, type Manifest } from "../../src/archive/manifest.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { deleteSnapshots } from "../../src/retention/delete.ts";
import { prune, type PruneReport } from "../../src/retention/prune.ts";
import { readAll, type StorageBackend } from "../../src/storage/backend.ts";
import { archiveKey, manifestKey } from "../../src/storage/layout.ts";
import { listSnapshots, readManifest } from "../../src/storage/snapshots.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { freshLocal, freshS3 } from "../support/storage.ts";

const DAY = 24 * 3600_000;

/** The --storage value that points the CLI at the same place as `storage`. */
function locationOf(storage: StorageBackend): string {
  return storage.location.startsWith("s3://") ? storage.location : storage.location.replace(/^file:\/\//, "");
}

async function put(storage: StorageBackend, key: string, data: Buffer | string): Promise<void> {
  await storage.write(key, Readable.from([Buffer.from(data)]));
}

async function keys(storage: StorageBackend): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of storage.list("")) out.push(key);
  return out.sort();
}

describe("retention: crd-backup prune and snapshot --keep-*", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("ret")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("ret")],
      widgetsPerNamespace: 2,
    });
  });
  afterAll(() => admin.close());

  const snapshot = async (storage: StorageBackend, extra: string[] = []) => {
    const res = await runCli([
      "snapshot",
      "--storage",
      locationOf(storage),
      "--include-groups",
      fx.group,
      "-o",
      "json",
      ...extra,
    ]);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as { id: string; pruned?: string[] };
  };

  /**
   * More history than a test can wait for: copies of a real snapshot under earlier ids, some
   * claiming another cluster. Prune reads manifests only, so only the manifests need to differ.
   */
  async function forge(storage: StorageBackend, from: string, at: Date, cluster?: string): Promise<string> {
    const real = plainManifest(await readManifest(storage, from));
    const id = newSnapshotId(at);
    const manifest: Manifest = {
      ...real,
      snapshotId: id,
      startedAt: at.toISOString(),
      finishedAt: at.toISOString(),
      cluster: cluster ? { ...real.cluster, uid: cluster } : real.cluster,
    };
    await put(storage, archiveKey(id), await readAll(await storage.read(archiveKey(from))));
    await put(storage, manifestKey(id), serializeManifest(manifest));
    return id;
  }

  for (const [name, make] of [
    ["MinIO", freshS3],
    ["a local directory", freshLocal],
  ] as const) {
    it(`on ${name}: per cluster, dry-run first, and never touches what is not a snapshot`, async () => {
      const storage = make();
      const real = (await snapshot(storage)).id;
      const ours = (await readManifest(storage, real)).cluster.uid;
      const now = Date.now();
      const a = [];
      for (let d = 5; d >= 1; d--) a.push(await forge(storage, real, new Date(now - d * DAY)));
      const b = [];
      for (let d = 3; d >= 1; d--)
        b.push(await forge(storage, real, new Date(now - d * DAY), "other-cluster"));
      const foreign = [
        "notes.txt",
        "snapshots/README",
        `snapshots/${a[0]}/extra.txt`,
        "snapshots/not-an-id/archive.tar.gz",
      ];
      for (const k of foreign) await put(storage, k, "not ours");
      // an archive whose manifest never came: old (abandoned) and fresh (maybe a snapshot in progress)
      const abandoned = newSnapshotId(new Date(now - 3 * DAY));
      const inProgress = newSnapshotId(new Date(now));
      await put(storage, archiveKey(abandoned), "partial upload");
      await put(storage, archiveKey(inProgress), "partial upload");
      const before = await keys(storage);

      const dry = await runCli([
        "prune",
        "--storage",
        locationOf(storage),
        "--keep-last",
        "2",
        "--dry-run",
        "-o",
        "json",
      ]);
      expect(dry.code, dry.stderr).toBe(0);
      const plan = JSON.parse(dry.stdout) as PruneReport;
      expect(plan.dryRun).toBe(true);
      const removeOf = (r: PruneReport, uid: string) =>
        r.clusters
          .find((c) => c.uid === uid)!
          .remove.map((d) => d.id)
          .sort();
      expect(removeOf(plan, ours)).toEqual(a.slice(0, 4).sort());
      expect(removeOf(plan, "other-cluster")).toEqual([b[0]]);
      expect(plan.orphans).toEqual([abandoned]);
      expect(await keys(storage)).toEqual(before);

      // one cluster only: the other's snapshots are not its to judge
      const one = await runCli([
        "prune",
        "--storage",
        locationOf(storage),
        "--keep-last",
        "2",
        "--cluster",
        ours,
      ]);
      expect(one.code, one.stderr).toBe(0);
      expect(one.stdout).toMatch(new RegExp(`cluster ${ours} .*keep 2, removed 4`));
      let left = await listSnapshots(storage);
      expect(left.map((s) => s.id).sort()).toEqual([a[4], real, ...b].sort());

      const all = await runCli(["prune", "--storage", locationOf(storage), "--keep-last", "1", "-o", "json"]);
      expect(all.code, all.stderr).toBe(0);
      left = await listSnapshots(storage);
      expect(left.map((s) => s.id).sort()).toEqual([real, b[2]].sort());
      const after = await keys(storage);
      for (const k of foreign) expect(after).toContain(k);
      expect(after).toContain(archiveKey(inProgress));
      expect(after).not.toContain(archiveKey(abandoned));
      for (const id of [...a, ...b.slice(0, 2)]) {
        expect(after).not.toContain(manifestKey(id));
        expect(after).not.toContain(archiveKey(id));
      }
    });
  }

  it("a prune that dies between its two deletes leaves nothing listed as complete, and the next prune finishes the job", async () => {
    const storage = freshS3();
    const real = (await snapshot(storage)).id;
    const old = await forge(storage, real, new Date(Date.now() - 2 * DAY));
    // storage that fails every archive delete: the crash window between manifest and archive
    const crashing: StorageBackend = Object.assign(Object.create(storage) as StorageBackend, {
      remove: async (key: string) => {
        if (key.endsWith("archive.tar.zst")) throw new Error("killed mid-prune");
        return storage.remove(key);
      },
    });
    await expect(prune(crashing, { policy: { last: 1 }, dryRun: false, graceMs: DAY })).rejects.toThrow(
      /killed mid-prune/,
    );
    expect((await listSnapshots(storage)).map((s) => s.id)).toEqual([real]);
    const verify = await runCli(["verify", old, "--storage", locationOf(storage)]);
    expect(verify.code).not.toBe(0); // not restorable either: it is simply gone as a snapshot
    expect(await storage.stat(archiveKey(old))).toBeDefined();
    const next = await prune(storage, { policy: { last: 1 }, dryRun: false, graceMs: DAY });
    expect(next.orphans).toEqual([old]);
    expect(await storage.stat(archiveKey(old))).toBeUndefined();
  });

  it("snapshot --keep-last prunes its own cluster after each run; --metrics-file carries counts and the last success across runs, failures included", async () => {
    const storage = freshLocal();
    const metrics = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-metrics-")), "crd-backup.prom");
    const ids = [];
    for (let i = 0; i < 3; i++)
      ids.push(await snapshot(storage, ["--keep-last", "2", "--metrics-file", metrics]));
    expect(ids[2]!.pruned).toEqual([ids[0]!.id]);
    expect((await listSnapshots(storage)).map((s) => s.id)).toEqual([ids[1]!.id, ids[2]!.id]);
    let prom = readFileSync(metrics, "utf8");
    expect(prom).toMatch(/^crd_backup_snapshot_runs_total\{outcome="success"\} 3$/m);
    expect(prom).toMatch(/^crd_backup_snapshot_last_run_success 1$/m);
    expect(prom).toMatch(/^crd_backup_prune_removed_snapshots 1$/m);
    expect(prom).toMatch(
      new RegExp(
        `^crd_backup_snapshot_objects\\{resource="widgets\\.${fx.group.replace(/\./g, "\\.")}"\\} ${fx.counts.widgets}$`,
        "m",
      ),
    );
    const lastSuccess = /^crd_backup_snapshot_last_success_timestamp_seconds (\S+)$/m.exec(prom)![1];

    // the API server unreachable: the run fails, and says so without losing the last success
    const kubeconfig = path.join(path.dirname(metrics), "unreachable.json");
    const cfg = JSON.parse(readFileSync(testEnv().kubeconfig, "utf8")) as {
      clusters: { cluster: { server: string } }[];
    };
    cfg.clusters[0]!.cluster.server = "https://127.0.0.1:1";
    writeFileSync(kubeconfig, JSON.stringify(cfg));
    const failed = await runCli(
      ["snapshot", "--storage", locationOf(storage), "--keep-last", "2", "--metrics-file", metrics],
      { env: { KUBECONFIG: kubeconfig } },
    );
    expect(failed.code).toBe(1);
    prom = readFileSync(metrics, "utf8");
    expect(prom).toMatch(/^crd_backup_snapshot_runs_total\{outcome="failure"\} 1$/m);
    expect(prom).toMatch(/^crd_backup_snapshot_runs_total\{outcome="success"\} 3$/m);
    expect(prom).toMatch(/^crd_backup_snapshot_last_run_success 0$/m);
    expect(/^crd_backup_snapshot_last_success_timestamp_seconds (\S+)$/m.exec(prom)![1]).toBe(lastSuccess);
    expect((await listSnapshots(storage)).length).toBe(2);
    expect(existsSync(`${metrics}.tmp`)).toBe(false);
  });

  it("latest is per cluster: refused as ambiguous where clusters share a prefix, latest@<uid> picks one", async () => {
    const storage = freshLocal();
    const real = (await snapshot(storage)).id;
    const ours = (await readManifest(storage, real)).cluster.uid;
    const other = await forge(storage, real, new Date(Date.now() + 60_000), "other-cluster-uid");

    const ambiguous = await runCli(["restore", "latest", "--storage", locationOf(storage), "--dry-run"]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(
      /"latest" is ambiguous: .* holds snapshots of 2 clusters: .*latest@<cluster uid>/,
    );
    expect(ambiguous.stderr).toContain(ours);
    expect(ambiguous.stderr.trim().split("\n")).toHaveLength(1);

    const pick = async (ref: string) => {
      const res = await runCli(["inspect", ref, "--storage", locationOf(storage), "-o", "json"]);
      expect(res.code, res.stderr).toBe(0);
      return (JSON.parse(res.stdout) as { id: string }).id;
    };
    expect(await pick("latest@other")).toBe(other);
    expect(await pick(`latest@${ours.slice(0, 8)}`)).toBe(real);
    expect(await pick("latest@other")).not.toBe(await pick(`latest@${ours}`));
    const none = await runCli(["inspect", "latest@nosuch", "--storage", locationOf(storage)]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no complete snapshot of a cluster nosuch/);
  });

  it("delete removes named snapshots manifest first, checks every name before deleting anything, and keeps a cluster's last complete snapshot unless --allow-last", async () => {
    const storage = freshS3();
    const at = locationOf(storage);
    const real = (await snapshot(storage)).id;
    const older = await forge(storage, real, new Date(Date.now() - 2 * DAY));
    const other = await forge(storage, real, new Date(Date.now() - DAY), "other-cluster-uid");
    const listed = async () => (await listSnapshots(storage)).map((s) => s.id);
    const del = (args: string[]) => runCli(["delete", ...args, "--storage", at]);

    // an unknown id anywhere in the list: nothing goes
    const unknown = await del([older, "20200101T000000Z-00000000"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
    expect(unknown.stderr).toMatch(/snapshot 20200101T000000Z-00000000 does not exist/);
    expect(await listed()).toEqual([older, other, real]);

    // every complete snapshot of our cluster: refused, nothing goes, even the one that could
    const last = await del([older, real]);
    expect(last.code).toBe(2);
    expect(last.stderr).toMatch(/last complete snapshot of cluster .*--allow-last/);
    expect(await listed()).toEqual([older, other, real]);

    const dry = await del([older, "-o", "json", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      removed: [{ id: older, status: "complete" }],
    });
    expect(await listed()).toEqual([older, other, real]);

    const one = await del([older]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain(`deleted ${older}`);
    expect(await listed()).toEqual([other, real]);
    expect(await storage.stat(archiveKey(older))).toBeUndefined();

    // killed between its two deletes: the manifest went first, so nothing broken is listed
    const doomed = await forge(storage, real, new Date(Date.now() - 3 * DAY));
    const crashing: StorageBackend = Object.assign(Object.create(storage) as StorageBackend, {
      remove: async (key: string) => {
        if (key.endsWith("archive.tar.zst")) throw new Error("killed mid-delete");
        return storage.remove(key);
      },
    });
    await expect(deleteSnapshots(crashing, [doomed], { dryRun: false, allowLast: false })).rejects.toThrow(
      /killed mid-delete/,
    );
    expect(await listed()).toEqual([other, real]);
    expect(await storage.stat(archiveKey(doomed))).toBeDefined(); // an orphan, for the next prune
    await storage.remove(archiveKey(doomed));

    // a manifest nobody can read: prune leaves it to a human, who deletes it by id
    const garbled = await forge(storage, real, new Date(Date.now() - 4 * DAY));
    await storage.remove(manifestKey(garbled));
    await put(storage, manifestKey(garbled), "{ not json");
    const pruned = await runCli(["prune", "--keep-last", "5", "--storage", at]);
    expect(pruned.stdout).toContain(`crd-backup delete ${garbled} removes it`);
    const cleared = await del([garbled, "-o", "json"]);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout)).toMatchObject({ removed: [{ id: garbled, status: "unreadable" }] });
    expect(await storage.stat(manifestKey(garbled))).toBeUndefined();
    expect(await storage.stat(archiveKey(garbled))).toBeUndefined();

    // the other cluster's only snapshot, then ours by latest@: each needs --allow-last
    expect((await del([other])).code).toBe(2);
    expect((await del([other, "--allow-last"])).code).toBe(0);
    const ours = (await readManifest(storage, real)).cluster.uid;
    const gone = await del([`latest@${ours}`, "--allow-last", "-o", "json"]);
    expect(gone.code, gone.stderr).toBe(0);
    expect(JSON.parse(gone.stdout)).toMatchObject({ dryRun: false, removed: [{ id: real, cluster: ours }] });
    expect(await listed()).toEqual([]);
    expect(await keys(storage)).toEqual([]);
  });

  it("refuses prune without a policy, and a bad --keep-within, as usage errors", async () => {
    const dir = freshLocal();
    const none = await runCli(["prune", "--storage", locationOf(dir)]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no retention policy/);
    const bad = await runCli(["prune", "--storage", locationOf(dir), "--keep-within", "3 days"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });
});
