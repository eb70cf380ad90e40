/**
 * Issue 21, items 4 and 5, on the real servers: an empty $CRD_BACKUP_ENCRYPT_TO never means
 * plaintext, and a snapshot or segment a bucket writer dated in the future steers neither
 * `latest`, nor prune, nor `--at now`.
 */
import { describe, expect, it } from "vitest";
import { newSnapshotId } from "../../src/archive/format.ts";
import { readAll, type StorageBackend } from "../../src/storage/backend.ts";
import { archiveKey, manifestKey } from "../../src/storage/layout.ts";
import { readManifest } from "../../src/storage/snapshots.ts";
import { runCli } from "../support/cli.ts";
import { uniqueName } from "../support/cluster.ts";
import { freshS3 } from "../support/storage.ts";

const url = (s: StorageBackend) => s.location;

async function keys(storage: StorageBackend): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of storage.list("")) out.push(key);
  return out;
}

describe("forged times and an empty recipients setting, on MinIO", () => {
  it("$CRD_BACKUP_ENCRYPT_TO set but holding no recipient: snapshot and record refuse in one line and write nothing", async () => {
    const storage = freshS3();
    const group = `${uniqueName("none")}.example.com`;
    for (const value of ["", "   ", "# recipients go here\n"]) {
      const snap = await runCli(["snapshot", "--storage", url(storage), "--include-groups", group], {
        env: { CRD_BACKUP_ENCRYPT_TO: value },
      });
      expect(snap.code).toBe(2);
      expect(snap.stderr.trim().split("\n")).toHaveLength(1);
      expect(snap.stderr).toMatch(/CRD_BACKUP_ENCRYPT_TO is set but holds no recipient/);
    }
    const rec = await runCli(["record", "--storage", url(storage), "--include-groups", group], {
      env: { CRD_BACKUP_ENCRYPT_TO: "," },
    });
    expect(rec.code).toBe(2);
    expect(rec.stderr).toMatch(/holds no recipient/);
    expect(await keys(storage)).toEqual([]);
  });

  it("a copy of a real snapshot dated 2099: latest refuses it by name, prune leaves it and removes nothing real by it", async () => {
    const storage = freshS3();
    const group = `${uniqueName("none")}.example.com`;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const snap = await runCli([
        "snapshot",
        "--storage",
        url(storage),
        "--include-groups",
        group,
        "-o",
        "json",
      ]);
      expect(snap.code, snap.stderr).toBe(0);
      ids.push((JSON.parse(snap.stdout) as { id: string }).id);
    }
    // what someone holding the job's write credential can do: a whole, consistent snapshot from 2099
    const real = await readManifest(storage, ids[1]!);
    const at = new Date("2099-01-01T00:00:00.000Z");
    const forged = newSnapshotId(at);
    const doc = { ...real, snapshotId: forged, startedAt: at.toISOString(), finishedAt: at.toISOString() };
    await storage.createExclusive(archiveKey(forged), await readAll(await storage.read(archiveKey(ids[1]!))));
    await storage.createExclusive(manifestKey(forged), Buffer.from(JSON.stringify(doc)));

    const restore = await runCli(["restore", "latest", "--storage", url(storage), "--dry-run"]);
    expect(restore.code).not.toBe(0);
    expect(restore.stderr.trim().split("\n")).toHaveLength(1);
    expect(restore.stderr).toMatch(
      new RegExp(`${forged}: finishedAt 2099-01-01T00:00:00.000Z is in the future`),
    );

    const pruned = await runCli(["prune", "--storage", url(storage), "--keep-last", "1", "-o", "json"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    const report = JSON.parse(pruned.stdout) as {
      clusters: { keep: { id: string }[]; remove: { id: string }[] }[];
      unreadable: { id: string }[];
    };
    expect(report.unreadable.map((u) => u.id)).toEqual([forged]);
    expect(report.clusters[0]!.keep.map((d) => d.id)).toEqual([ids[1]]);
    expect(report.clusters[0]!.remove.map((d) => d.id)).toEqual([ids[0]]);
    expect(await storage.stat(manifestKey(forged))).toBeTruthy();
    // named, it is still refused: nothing reads a snapshot from the future
    const named = await runCli(["verify", forged, "--storage", url(storage)]);
    expect(named.code).not.toBe(0);
    expect(named.stderr).toMatch(/in the future/);
  });
});
