/**
 * Issue 21, item 6: rekey keeps the old archive until something shows the new one decrypts.
 * `--verify-identity` (an identity of the NEW recipients) decrypts the new archive and verifies it
 * in full before the manifest names it, and only then is the old archive removed; without it the
 * old archive stays, for prune past its --grace period or a later `rekey --verify-identity`. Real
 * CLI, real MinIO, and the real age tool for the final decryption.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { snapshotIdTime } from "../../src/archive/format.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { prune } from "../../src/retention/prune.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { s3Backend, s3Client } from "../support/faults.ts";

describe("rekey keeps the old archive until the new one is shown to decrypt", () => {
  const keys = mkdtempSync(path.join(os.tmpdir(), "crd-backup-rekey-keys-"));
  const keyOld = path.join(keys, "old.txt");
  const keyNew = path.join(keys, "new.txt");
  const keyWrong = path.join(keys, "wrong.txt");
  let recipientOld: string;
  let recipientNew: string;
  let admin: KubeClient;
  let client: S3Client;
  let fx: LoadedFixtures;
  const bucket = testEnv().s3.bucket;

  beforeAll(async () => {
    admin = await adminClient();
    client = s3Client(testEnv().s3);
    const gen = async (file: string) => {
      const res = await runCli(["keygen", "--output", file]);
      expect(res.code, res.stderr).toBe(0);
      return res.stdout.trim();
    };
    [recipientOld, recipientNew] = await Promise.all([gen(keyOld), gen(keyNew), gen(keyWrong)]);
    fx = await loadFixtures(admin, {
      group: `${uniqueName("rekey")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("rekey")],
      widgetsPerNamespace: 3,
    });
  });
  afterAll(() => {
    admin.close();
    client.destroy();
  });

  /** An encrypted snapshot (to the old recipient) in a prefix of its own. */
  async function snapshot(): Promise<{ prefix: string; storage: string; id: string }> {
    const prefix = uniqueName("rekey");
    const storage = `s3://${bucket}/${prefix}`;
    const res = await runCli([
      "snapshot",
      "--storage",
      storage,
      "--include-groups",
      fx.group,
      "--encrypt-to",
      recipientOld,
      "-o",
      "json",
    ]);
    expect(res.code, res.stderr).toBe(0);
    return { prefix, storage, id: (JSON.parse(res.stdout) as { id: string }).id };
  }

  /** The names stored under `snapshots/<id>/`. */
  async function stored(prefix: string, id: string): Promise<string[]> {
    const list = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/snapshots/${id}/` }),
    );
    return (list.Contents ?? []).map((o) => o.Key!.slice(`${prefix}/snapshots/${id}/`.length)).sort();
  }

  const verify = (storage: string, id: string, key: string) =>
    runCli(["verify", id, "--storage", storage, "--identity", key]);

  const REKEYED = /^archive\.\d{8}T\d{6}Z-[0-9a-f]{8}\.tar\.zst\.age$/;

  it("without --verify-identity the old archive stays and the output says until when; prune removes it only past --grace; rekey --verify-identity later removes it", async () => {
    const { prefix, storage, id } = await snapshot();
    const res = await runCli([
      "rekey",
      id,
      "--storage",
      storage,
      "--encrypt-to",
      recipientNew,
      "--identity",
      keyOld,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toMatch(
      new RegExp(
        `^${id} rekeyed: archive\\.\\S+\\.tar\\.zst\\.age; old archive archive\\.tar\\.zst\\.age kept: not verified with an identity of the new recipients, so it stays until prune removes it past its --grace period, or until rekey --verify-identity is run$`,
      ),
    );
    const names = await stored(prefix, id);
    expect(names).toHaveLength(3);
    expect(names).toContain("archive.tar.zst.age");
    expect(names).toContain("manifest.json");
    const current = names.find((n) => REKEYED.test(n))!;
    // the manifest names the new archive: the new key reads it, the old one no longer does
    expect((await verify(storage, id, keyNew)).code).toBe(0);
    expect((await verify(storage, id, keyOld)).code).toBe(1);

    // prune within its grace period leaves the old archive alone
    const kept = await runCli([
      "prune",
      "--storage",
      storage,
      "--keep-last",
      "5",
      "--grace",
      "1h",
      "-o",
      "json",
    ]);
    expect(kept.code, kept.stderr).toBe(0);
    expect((JSON.parse(kept.stdout) as { orphans: string[] }).orphans).toEqual([]);
    expect(await stored(prefix, id)).toEqual(names);

    // rekey --verify-identity (no --identity needed: nothing is re-encrypted) confirms and removes it
    const confirm = await runCli([
      "rekey",
      id,
      "--storage",
      storage,
      "--encrypt-to",
      recipientNew,
      "--verify-identity",
      keyNew,
      "-o",
      "json",
    ]);
    expect(confirm.code, confirm.stderr).toBe(0);
    expect(JSON.parse(confirm.stdout)).toMatchObject({
      snapshots: [
        {
          id,
          outcome: "unchanged",
          archive: current,
          verified: true,
          oldArchivesRemoved: ["archive.tar.zst.age"],
        },
      ],
    });
    expect(await stored(prefix, id)).toEqual([current, "manifest.json"].sort());
    expect((await verify(storage, id, keyNew)).code).toBe(0);
  });

  it("prune past its --grace removes an unverified rekey's old archive", async () => {
    const { prefix, storage, id } = await snapshot();
    const res = await runCli([
      "rekey",
      id,
      "--storage",
      storage,
      "--encrypt-to",
      recipientNew,
      "--identity",
      keyOld,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const pruned = await runCli([
      "prune",
      "--storage",
      storage,
      "--keep-last",
      "5",
      "--grace",
      "0h",
      "-o",
      "json",
    ]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect((JSON.parse(pruned.stdout) as { orphans: string[] }).orphans).toEqual([
      `${id}/archive.tar.zst.age`,
    ]);
    const names = await stored(prefix, id);
    expect(names).toHaveLength(2);
    expect((await verify(storage, id, keyNew)).code).toBe(0);
  });

  describe("prune's grace period for the old archive of a rekey two seconds after the snapshot", () => {
    const graceMs = 3_600_000;
    let at: (cutoff: number) => Promise<string[]>;
    let id: string;
    let takenAt: number;
    let rekeyedAt: number;
    let close: () => void;

    beforeAll(async () => {
      const s = await snapshot();
      id = s.id;
      await sleep(2000);
      const res = await runCli([
        "rekey",
        id,
        "--storage",
        s.storage,
        "--encrypt-to",
        recipientNew,
        "--identity",
        keyOld,
      ]);
      expect(res.code, res.stderr).toBe(0);
      const current = (await stored(s.prefix, id)).find((n) => REKEYED.test(n))!;
      rekeyedAt = snapshotIdTime(current.slice("archive.".length, -".tar.zst.age".length)).getTime();
      takenAt = snapshotIdTime(id).getTime();
      expect(rekeyedAt - takenAt).toBeGreaterThanOrEqual(1000);
      const b = s3Backend(testEnv().s3, s.prefix);
      close = () => b.close();
      // what prune (dry run) would remove, run at the time whose cutoff (now - grace) is `cutoff`
      at = async (cutoff) =>
        (await prune(b, { policy: { last: 5 }, dryRun: true, graceMs, now: new Date(cutoff + graceMs) }))
          .orphans;
    });
    afterAll(() => close());

    it("past the grace period since the rekey, prune removes the old archive", async () => {
      expect(await at(rekeyedAt + 1000)).toEqual([`${id}/archive.tar.zst.age`]);
    });

    // the grace period runs from the rekey (the time in the name of the archive the manifest
    // names now), not from the snapshot: an old archive is not removed the moment it is replaced
    it("past it since the snapshot but not since the rekey, prune keeps the old archive", async () => {
      expect(await at((takenAt + rekeyedAt) / 2)).toEqual([]);
    });
  });

  it("--verify-identity with an identity of the new recipients: verified before the switch, then the old archive is removed", async () => {
    const { prefix, storage, id } = await snapshot();
    const res = await runCli([
      "rekey",
      id,
      "--storage",
      storage,
      "--encrypt-to",
      recipientNew,
      "--identity",
      keyOld,
      "--verify-identity",
      keyNew,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toMatch(
      new RegExp(
        `^${id} rekeyed: archive\\.\\S+\\.tar\\.zst\\.age; verified with --verify-identity; old archive archive\\.tar\\.zst\\.age removed$`,
      ),
    );
    const names = await stored(prefix, id);
    expect(names).toHaveLength(2);
    const current = names.find((n) => REKEYED.test(n))!;
    expect((await verify(storage, id, keyNew)).code).toBe(0);
    // and the standard age tool decrypts what is stored, without crd-backup
    const body = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/snapshots/${id}/${current}` }),
    );
    const plain = execFileSync(testEnv().tools.age, ["-d", "-i", keyNew], {
      input: Buffer.from(await body.Body!.transformToByteArray()),
    });
    expect(zstdDecompressSync(plain).includes(Buffer.from("crd-backup-archive"))).toBe(true);
  });

  it("--verify-identity with an identity that is not a new recipient: refused with one line, the snapshot left as it was", async () => {
    const { prefix, storage, id } = await snapshot();
    const before = await stored(prefix, id);
    const res = await runCli([
      "rekey",
      id,
      "--storage",
      storage,
      "--encrypt-to",
      recipientNew,
      "--identity",
      keyOld,
      "--verify-identity",
      keyWrong,
    ]);
    expect(res.code).toBe(1);
    const lines = res.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("crd-backup:"));
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `snapshot ${id}: --verify-identity: .*none of the identities in ${keyWrong}.*; the snapshot is left as it was`,
      ),
    );
    // the new archive is gone again, the manifest still names the old one, which the old key reads
    expect(await stored(prefix, id)).toEqual(before);
    expect((await verify(storage, id, keyOld)).code).toBe(0);
  });
});
