/**
 * docs/security.md's job policy caps Object Lock (issue 21, item 7): a stolen job credential can
 * still write, but cannot lock what it writes for decades, nor in compliance mode. Checked with a
 * MinIO STS session policy holding exactly the documented statements.
 */
import { readFileSync } from "node:fs";
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/nested-clients/sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.ts";
import { testEnv, uniqueName } from "../support/cluster.ts";

/** The job policy as docs/security.md prints it, pointed at `bucket`. */
function documentedJobPolicy(bucket: string): string {
  const doc = readFileSync(new URL("../../docs/security.md", import.meta.url), "utf8");
  const m = /The backup job \(CronJob[^]*?```json\n([^]*?)```/.exec(doc);
  if (!m) throw new Error("docs/security.md has no job policy");
  return m[1]!
    .replaceAll("arn:aws:s3:::backups/prod/*", `arn:aws:s3:::${bucket}/*`)
    .replaceAll("arn:aws:s3:::backups", `arn:aws:s3:::${bucket}`);
}

describe("the documented job policy caps Object Lock", () => {
  const bucket = uniqueName("cap");
  let root: S3Client;
  let env: Record<string, string>;
  beforeAll(async () => {
    const { s3 } = testEnv();
    const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    root = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials });
    await root.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    const sts = new STSClient({ endpoint: s3.endpoint, region: s3.region, credentials });
    const res = await sts.send(
      new AssumeRoleCommand({
        RoleArn: "arn:minio:iam:::role/crd-backup-job",
        RoleSessionName: "crd-backup-job",
        Policy: documentedJobPolicy(bucket),
        DurationSeconds: 3600,
      }),
    );
    sts.destroy();
    const c = res.Credentials!;
    env = {
      AWS_ACCESS_KEY_ID: c.AccessKeyId!,
      AWS_SECRET_ACCESS_KEY: c.SecretAccessKey!,
      AWS_SESSION_TOKEN: c.SessionToken!,
    };
  });
  afterAll(() => root.destroy());

  const manifests = async (prefix: string) =>
    ((await root.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))).Contents ?? [])
      .map((o) => o.Key!)
      .filter((k) => k.endsWith("/manifest.json"));

  it("within the cap a snapshot is written; 10 years, or compliance mode, is refused by the server and nothing becomes visible", async () => {
    const group = `${uniqueName("none")}.example.com`;
    const snap = (prefix: string, ...flags: string[]) =>
      runCli(["snapshot", "--storage", `s3://${bucket}/${prefix}`, "--include-groups", group, ...flags], {
        env,
      });

    const ok = await snap("ok", "--retain", "30d");
    expect(ok.code, ok.stderr).toBe(0);
    expect(await manifests("ok")).toHaveLength(1);

    const decades = await snap("decades", "--retain", "3650d");
    expect(decades.code).not.toBe(0);
    expect(decades.stderr).toMatch(/Access Denied|AccessDenied/);
    expect(await manifests("decades")).toEqual([]);

    const compliance = await snap("compliance", "--retain", "30d", "--retention-mode", "compliance");
    expect(compliance.code).not.toBe(0);
    expect(await manifests("compliance")).toEqual([]);
  });
});
