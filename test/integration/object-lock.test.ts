import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/nested-clients/sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { CrdBackupError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { parseRetention } from "../../src/storage/lock.ts";
import { S3Backend, type S3Options } from "../../src/storage/s3.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";

const root = () => {
  const { s3 } = testEnv();
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
};

/**
 * The CronJob's credentials: MinIO STS with a session policy that may write (with retention) and
 * read, but has no s3:DeleteObject and no s3:BypassGovernanceRetention (docs/security.md).
 */
async function jobCredentials(bucket: string): Promise<Record<string, string>> {
  return sessionCredentials(bucket, [
    "s3:PutObject",
    "s3:PutObjectRetention",
    "s3:GetObject",
    "s3:GetObjectRetention",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketObjectLockConfiguration",
  ]);
}

/** Credentials (MinIO STS) whose session policy allows exactly `actions` on the bucket. */
async function sessionCredentials(bucket: string, actions: string[]): Promise<Record<string, string>> {
  const { s3 } = testEnv();
  const sts = new STSClient({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const policy = {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Action: actions,
        Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`],
      },
    ],
  };
  const res = await sts.send(
    new AssumeRoleCommand({
      RoleArn: "arn:minio:iam:::role/crd-backup-job",
      RoleSessionName: "crd-backup-job",
      Policy: JSON.stringify(policy),
      DurationSeconds: 3600,
    }),
  );
  sts.destroy();
  const c = res.Credentials!;
  return {
    AWS_ACCESS_KEY_ID: c.AccessKeyId!,
    AWS_SECRET_ACCESS_KEY: c.SecretAccessKey!,
    AWS_SESSION_TOKEN: c.SessionToken!,
  };
}

describe("S3 Object Lock (--retain)", () => {
  let admin: KubeClient;
  let s3: S3Client;
  let fx: LoadedFixtures;
  let job: Record<string, string>;
  let jobS3: S3Client;
  const bucket = uniqueName("lock");
  const storage = `s3://${bucket}/backups`;

  beforeAll(async () => {
    admin = await adminClient();
    s3 = root();
    // Object Lock can only be enabled when a bucket is created (it turns versioning on too)
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    job = await jobCredentials(bucket);
    const { s3: env } = testEnv();
    jobS3 = new S3Client({
      endpoint: env.endpoint,
      region: env.region,
      forcePathStyle: true,
      credentials: {
        accessKeyId: job["AWS_ACCESS_KEY_ID"]!,
        secretAccessKey: job["AWS_SECRET_ACCESS_KEY"]!,
        sessionToken: job["AWS_SESSION_TOKEN"]!,
      },
    });
    fx = await loadFixtures(admin, {
      group: `${uniqueName("lock")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("lock-a")],
      widgetsPerNamespace: 2,
    });
  });
  afterAll(() => {
    admin.close();
    s3.destroy();
    jobS3.destroy();
  });

  it("a bucket without Object Lock is refused with one line, and nothing is written", async () => {
    const prefix = uniqueName("nolock");
    const res = await runCli([
      "snapshot",
      "--storage",
      `s3://${testEnv().s3.bucket}/${prefix}`,
      "--include-groups",
      fx.group,
      "--retain",
      "60",
    ]);
    expect(res.code).toBe(1);
    // the log says the snapshot started; the failure is one line
    expect(res.stderr.split("\n").filter((l) => l.startsWith("crd-backup:"))).toHaveLength(1);
    expect(res.stderr, res.stderr).toMatch(
      /--retain 60: bucket crd-backup-test does not have Object Lock enabled/,
    );
    const left = await s3.send(
      new ListObjectsV2Command({ Bucket: testEnv().s3.bucket, Prefix: `${prefix}/` }),
    );
    expect(left.KeyCount ?? 0).toBe(0);
  });

  it("--retain on a local directory is a usage error", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-lock-"));
    const res = await runCli(["snapshot", "--storage", dir, "--include-groups", fx.group, "--retain", "7d"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--retain needs S3 storage with Object Lock/);
  });

  it("locked snapshots: the job's credentials cannot delete them, prune and delete keep them whole, and prune removes them once the retention has passed", async () => {
    const snapshot = async (args: string[]) => {
      const res = await runCli(
        ["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json", ...args],
        { env: job },
      );
      expect(res.code, res.stderr).toBe(0);
      return (JSON.parse(res.stdout) as { id: string }).id;
    };
    const started = Date.now();
    const old = await snapshot(["--retain", "30"]);
    const newer = await snapshot(["--retain", "30", "--retention-mode", "compliance"]);

    // every object carries the retention the flags asked for
    for (const [id, mode] of [
      [old, "GOVERNANCE"],
      [newer, "COMPLIANCE"],
    ] as const) {
      for (const name of ["archive.tar.zst", "manifest.json"]) {
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: bucket, Key: `backups/snapshots/${id}/${name}` }),
        );
        expect(head.ObjectLockMode, `${id}/${name}`).toBe(mode);
        const until = head.ObjectLockRetainUntilDate!.getTime();
        expect(until).toBeGreaterThan(started + 29_000);
        expect(until).toBeLessThan(Date.now() + 31_000);
      }
    }

    // with the job's credentials a delete fails at the server: no delete marker, no version delete,
    // no governance bypass
    const manifestKey = `backups/snapshots/${old}/manifest.json`;
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: manifestKey }));
    const versionId = versions.Versions![0]!.VersionId!;
    for (const cmd of [
      new DeleteObjectCommand({ Bucket: bucket, Key: manifestKey }),
      new DeleteObjectCommand({ Bucket: bucket, Key: manifestKey, VersionId: versionId }),
      new DeleteObjectCommand({
        Bucket: bucket,
        Key: manifestKey,
        VersionId: versionId,
        BypassGovernanceRetention: true,
      }),
    ]) {
      await expect(jobS3.send(cmd)).rejects.toMatchObject({ name: "AccessDenied" });
    }
    // and even the root credentials cannot delete a locked version
    await expect(
      s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: manifestKey, VersionId: versionId })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });

    // delete and prune (with credentials that may delete) plan around the locks: nothing half-deleted
    const del = await runCli(["delete", old, "--storage", storage, "--allow-last"]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(new RegExp(`^kept ${old}: locked until \\S+ \\(S3 Object Lock\\)`, "m"));
    const prune = await runCli(["prune", "--storage", storage, "--keep-last", "1", "-o", "json"]);
    expect(prune.code, prune.stderr).toBe(0);
    const report = JSON.parse(prune.stdout) as {
      clusters: { keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }[];
      locked: { id: string; until: string }[];
    };
    expect(report.clusters[0]!.remove).toEqual([]);
    expect(report.clusters[0]!.keep.find((d) => d.id === old)!.reasons).toEqual(["locked"]);
    expect(report.locked.map((l) => l.id)).toEqual([old]);
    const list = await runCli(["list", "--storage", storage, "-o", "json"]);
    expect((JSON.parse(list.stdout) as { id: string }[]).map((s) => s.id)).toEqual([old, newer]);

    // once the retention has passed, prune removes it, every version of every object
    const until = new Date(report.locked[0]!.until).getTime();
    await sleep(Math.max(0, until - Date.now() + 1500));
    const after = await runCli(["prune", "--storage", storage, "--keep-last", "1", "-o", "json"]);
    expect(after.code, after.stderr).toBe(0);
    expect((JSON.parse(after.stdout) as typeof report).clusters[0]!.remove.map((d) => d.id)).toEqual([old]);
    const gone = await s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `backups/snapshots/${old}/` }),
    );
    expect([...(gone.Versions ?? []), ...(gone.DeleteMarkers ?? [])]).toEqual([]);
    const verify = await runCli(["verify", newer, "--storage", storage], { env: job });
    expect(verify.code, verify.stderr).toBe(0);
  });
});

/**
 * Issue 21, item 7: when the Object Lock state of an object cannot be read, remove and lockedUntil
 * fail with an error naming the missing permission and the key, rather than falling back to a plain
 * DELETE (which on a versioned bucket only adds a delete marker, and was reported as a removal).
 * Restricted credentials are real: MinIO STS session policies, each lacking one permission.
 */
describe("S3 Object Lock state that cannot be read", () => {
  const bucket = uniqueName("lockstate");
  let s3: S3Client;
  let admin: KubeClient;
  let fx: LoadedFixtures;
  const ALL = [
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetObject",
    "s3:GetObjectRetention",
    "s3:PutObject",
    "s3:PutObjectRetention",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
  ];

  /** A backend whose credential has every permission in ALL except `without`. */
  async function backend(prefix: string, without: string[] = [], onBucket = bucket): Promise<S3Backend> {
    const c = await sessionCredentials(
      onBucket,
      ALL.filter((a) => !without.includes(a)),
    );
    const { s3: env } = testEnv();
    return new S3Backend({
      bucket: onBucket,
      prefix,
      endpoint: env.endpoint,
      region: env.region,
      credentials: {
        accessKeyId: c["AWS_ACCESS_KEY_ID"]!,
        secretAccessKey: c["AWS_SECRET_ACCESS_KEY"]!,
        sessionToken: c["AWS_SESSION_TOKEN"]!,
      },
    });
  }

  /** Every version and delete marker under `prefix`, as `key versionId` and `key (marker)`. */
  async function stored(prefix: string): Promise<string[]> {
    const res = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
    return [
      ...(res.Versions ?? []).map((v) => `${v.Key}`),
      ...(res.DeleteMarkers ?? []).map((v) => `${v.Key} (delete marker)`),
    ].sort();
  }

  /** The root user's backend options for `prefix` of the bucket. */
  function rootOptions(prefix: string): S3Options {
    const { s3: env } = testEnv();
    return {
      bucket,
      prefix,
      endpoint: env.endpoint,
      region: env.region,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    };
  }

  beforeAll(async () => {
    s3 = root();
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("lockstate")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("lockstate")],
      widgetsPerNamespace: 1,
    });
  });
  afterAll(() => {
    s3.destroy();
    admin.close();
  });

  // remove never needs a version's retention (storage refuses a locked version itself), so
  // without s3:GetObjectRetention only lockedUntil (what delete and prune plan with) fails
  const cases: [string, RegExp, ("remove" | "lockedUntil")[]][] = [
    [
      "s3:GetBucketObjectLockConfiguration",
      /not allowed to read the Object Lock configuration of bucket/,
      ["remove", "lockedUntil"],
    ],
    // MinIO, like AWS, also lists versions for s3:ListBucket: both go
    ["s3:ListBucketVersions", /not allowed to list the versions of the object/, ["remove", "lockedUntil"]],
    ["s3:GetObjectRetention", /not allowed to read the retention of version/, ["lockedUntil"]],
  ];
  it.each(cases)(
    "without %s, remove and lockedUntil fail naming the permission and the key, and leave the object as it was",
    async (permission, what, calls) => {
      const prefix = uniqueName("perm");
      const writer = await backend(prefix);
      await writer.createExclusive("snapshots/x/manifest.json", Buffer.from("{}"));
      const before = await stored(prefix);
      expect(before).toEqual([`${prefix}/snapshots/x/manifest.json`]);

      const without = permission === "s3:ListBucketVersions" ? [permission, "s3:ListBucket"] : [permission];
      const b = await backend(prefix, without);
      for (const call of calls) {
        const err = await b[call]("snapshots/x/manifest.json").then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${permission}: ${call} should fail`).toBeInstanceOf(CrdBackupError);
        const e = err as CrdBackupError;
        expect(e.code).toBe("STORAGE"); // a missing permission, not LOCKED
        expect(e.message).toContain(`s3://${bucket}/${prefix}/snapshots/x/manifest.json: access denied`);
        expect(e.message).toMatch(what);
        expect(e.message).toContain(`the credential needs ${permission}`);
        expect(e.message).not.toMatch(/\n/);
      }
      // no delete marker, no version removed: the object is exactly as it was
      expect(await stored(prefix)).toEqual(before);
      b.close();
      writer.close();
    },
  );

  it("with every permission it needs, remove deletes every version, and a locked one is LOCKED", async () => {
    const prefix = uniqueName("perm");
    const b = await backend(prefix);
    await b.createExclusive("free.json", Buffer.from("{}"));
    await expect(b.lockedUntil("free.json")).resolves.toBeUndefined();
    await b.remove("free.json");
    expect(await stored(prefix)).toEqual([]);

    const locking = new S3Backend({ ...rootOptions(prefix), retention: parseRetention("60") });
    await locking.createExclusive("locked.json", Buffer.from("{}"));
    const until = await b.lockedUntil("locked.json");
    expect(until!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    await expect(b.remove("locked.json")).rejects.toMatchObject({ code: "LOCKED" });
    expect(await stored(prefix)).toEqual([`${prefix}/locked.json`]);
    locking.close();
    b.close();
  });

  it("without s3:DeleteObjectVersion, a version under no retention is a missing permission, not LOCKED", async () => {
    const prefix = uniqueName("perm");
    const writer = await backend(prefix);
    await writer.createExclusive("free.json", Buffer.from("{}"));
    const b = await backend(prefix, ["s3:DeleteObjectVersion", "s3:DeleteObject"]);
    const err = (await b.remove("free.json").then(
      () => undefined,
      (e: unknown) => e,
    )) as CrdBackupError;
    expect(err).toBeInstanceOf(CrdBackupError);
    expect(err.code).toBe("STORAGE");
    expect(err.message).toMatch(
      /free\.json: access denied: not allowed to delete version \S+ .*under no Object Lock retention; the credential needs s3:DeleteObjectVersion/,
    );
    expect(await stored(prefix)).toEqual([`${prefix}/free.json`]);
    b.close();
    writer.close();
  });

  it("a bucket without Object Lock is not an error: remove deletes, lockedUntil says unlocked", async () => {
    const prefix = uniqueName("nolock");
    const b = await backend(prefix, [], testEnv().s3.bucket);
    await b.createExclusive("plain.json", Buffer.from("{}"));
    await expect(b.lockedUntil("plain.json")).resolves.toBeUndefined();
    await b.remove("plain.json");
    await expect(b.stat("plain.json")).resolves.toBeUndefined();
    b.close();
  });

  it("delete through the CLI without s3:GetBucketObjectLockConfiguration: one line naming it, non-zero exit, the snapshot kept", async () => {
    const prefix = uniqueName("perm");
    const storage = `s3://${bucket}/${prefix}`;
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    const before = await stored(prefix);
    const c = await sessionCredentials(
      bucket,
      ALL.filter((a) => a !== "s3:GetBucketObjectLockConfiguration"),
    );
    const del = await runCli(["delete", id, "--storage", storage, "--allow-last"], { env: c });
    expect(del.code).not.toBe(0);
    const lines = del.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("crd-backup:"));
    expect(lines, del.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `snapshots/${id}/\\S+: access denied: .*the credential needs s3:GetBucketObjectLockConfiguration`,
      ),
    );
    expect(del.stdout).not.toMatch(/removed|deleted/i);
    expect(await stored(prefix)).toEqual(before);
    const list = await runCli(["list", "--storage", storage, "-o", "json"]);
    expect((JSON.parse(list.stdout) as { id: string }[]).map((s) => s.id)).toEqual([id]);
  });
});
