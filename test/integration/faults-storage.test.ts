import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { EnvironmentInfo } from "../env/environment.ts";
import { startReplica, startServer, stopServer } from "../env/environment.ts";
import {
  kubeProxy,
  kubeconfigThrough,
  s3Proxy,
  type FaultProxy,
  type FaultRule,
  type RequestPattern,
} from "../env/fault-proxy.ts";
import { runCli, type CliResult } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { archiveContent, loadBlobs, multipartKeys, openUploads } from "../support/faults.ts";

// Snapshots whose upload to MinIO fails: through the fault proxy in front of MinIO, and with
// MinIO stopped in the middle of the upload. The archive (about 10 MiB of incompressible blobs)
// is larger than one 5 MiB part, so every run is a real multipart upload.

const BLOBS = 13;
const UPLOAD_PART: RequestPattern = { method: "PUT", query: (q) => q.has("partNumber") };

interface SnapshotOut {
  id: string;
  status: string;
  counts: { objects: number };
}

describe("snapshot under storage faults", () => {
  let admin: KubeClient;
  let group: string;

  beforeAll(async () => {
    admin = await adminClient();
    group = `${uniqueName("blobs")}.fixtures.crd-backup.io`;
    await loadBlobs(admin, { group, namespace: uniqueName("blobs"), count: BLOBS, bytes: 1_000_000 });
  });
  afterAll(() => admin.close());

  /** A snapshot of the blobs into a fresh prefix of `env`'s bucket, through `endpoint`. */
  const snapshot = (
    env: EnvironmentInfo,
    prefix: string,
    endpoint: string,
    extraEnv: Record<string, string> = {},
  ) =>
    runCli(
      [
        "snapshot",
        "--storage",
        `s3://${env.s3.bucket}/${prefix}`,
        "--s3-endpoint",
        endpoint,
        "--include-groups",
        group,
        "-o",
        "json",
      ],
      { env: extraEnv },
    );
  const listed = async (env: EnvironmentInfo, prefix: string) => {
    const res = await runCli([
      "list",
      "--storage",
      `s3://${env.s3.bucket}/${prefix}`,
      "--s3-endpoint",
      env.s3.endpoint,
      "-o",
      "json",
    ]);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as { id: string; status: string }[];
  };
  const verified = async (env: EnvironmentInfo, prefix: string, id: string) => {
    const res = await runCli([
      "verify",
      id,
      "--storage",
      `s3://${env.s3.bucket}/${prefix}`,
      "--s3-endpoint",
      env.s3.endpoint,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const got = await archiveContent(env.s3, prefix, id);
    expect(got.manifest.counts.objects).toBe(BLOBS);
    expect(got.manifest.archive.size).toBeGreaterThan(5 * 1024 * 1024); // more than one part
  };
  const oneLineFailure = (res: CliResult) => {
    expect(res.code, res.stdout).toBe(1);
    const last = res.stderr.trim().split("\n").at(-1)!;
    expect(last).toMatch(/^crd-backup: /);
    expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(res.stderr).not.toContain(testEnv().s3.secretAccessKey);
    return last;
  };

  describe("through the fault proxy", () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await s3Proxy(testEnv());
    });
    afterAll(() => proxy.close());

    const transient: [string, FaultRule["fault"]][] = [
      ["500 on the first two UploadParts", { kind: "status", status: 500 }],
      ["503 SlowDown on the first two UploadParts", { kind: "status", status: 503 }],
      [
        "a reset in the middle of the first two UploadParts' bodies",
        { kind: "reset-request", afterBytes: 1024 * 1024 },
      ],
    ];
    it.each(transient)("%s: retried, the snapshot completes and verifies", async (_, fault) => {
      proxy.clearRules();
      proxy.clearRequests();
      proxy.add({ ...UPLOAD_PART, count: { first: 2 }, fault });
      const env = testEnv();
      const prefix = uniqueName("sfault");
      const res = await snapshot(env, prefix, proxy.url);
      expect(res.code, res.stderr).toBe(0);
      const { id, status } = JSON.parse(res.stdout) as SnapshotOut;
      expect(status).toBe("complete");
      const parts = proxy.seen(UPLOAD_PART);
      expect(parts.filter((p) => p.fault).length).toBe(2);
      for (const p of parts.filter((p) => p.fault)) {
        const n = p.query.get("partNumber");
        expect(
          parts.some((q) => q.query.get("partNumber") === n && q.status === 200 && !q.fault),
          `part ${n} retried`,
        ).toBe(true);
      }
      await verified(env, prefix, id);
      const keys = multipartKeys(proxy, env.s3.bucket);
      expect(keys).toEqual([`${prefix}/snapshots/${id}/archive.tar.zst`]);
      expect(await openUploads(env.s3, keys)).toEqual([]);
    });

    const permanent: [string, FaultRule["fault"]][] = [
      ["500 on every UploadPart", { kind: "status", status: 500 }],
      ["a reset in the middle of every UploadPart", { kind: "reset-request", afterBytes: 256 * 1024 }],
    ];
    it.each(permanent)(
      "%s: exit 1 with one line, nothing listed, the multipart upload aborted",
      async (_, fault) => {
        proxy.clearRules();
        proxy.clearRequests();
        proxy.add({ ...UPLOAD_PART, fault });
        const env = testEnv();
        const prefix = uniqueName("sfault");
        const res = await snapshot(env, prefix, proxy.url);
        expect(oneLineFailure(res)).toMatch(
          new RegExp(
            `^crd-backup: write s3://${env.s3.bucket}/${prefix}/snapshots/\\S+/archive\\.tar\\.zst: `,
          ),
        );
        expect(proxy.seen({ method: "DELETE", query: (q) => q.has("uploadId") })).toHaveLength(1); // AbortMultipartUpload
        expect(await listed(env, prefix)).toEqual([]);
        const keys = multipartKeys(proxy, env.s3.bucket);
        expect(keys).toHaveLength(1);
        expect(await openUploads(env.s3, keys)).toEqual([]);
      },
    );

    it("a Kubernetes failure after the upload began: exit 1, nothing listed, the multipart upload aborted", async () => {
      proxy.clearRules();
      proxy.clearRequests();
      const kube = await kubeProxy(testEnv());
      try {
        // namespaces are read last, after every object is in the archive (and parts are uploaded)
        kube.add({ method: "GET", path: /^\/api\/v1\/namespaces\/blobs-/, fault: { kind: "reset" } });
        const env = testEnv();
        const prefix = uniqueName("sfault");
        const res = await snapshot(env, prefix, proxy.url, { KUBECONFIG: kubeconfigThrough(kube, env) });
        expect(oneLineFailure(res)).toMatch(/namespaces\/blobs-.*cannot reach the Kubernetes API/);
        expect(proxy.seen(UPLOAD_PART).length).toBeGreaterThanOrEqual(1);
        expect(await listed(env, prefix)).toEqual([]);
        const keys = multipartKeys(proxy, env.s3.bucket);
        expect(keys).toHaveLength(1);
        expect(await openUploads(env.s3, keys)).toEqual([]);
      } finally {
        await kube.close();
      }
    });
  });

  it("MinIO stopped in the middle of the upload: exit 1 with one line, nothing listed; after a restart a re-run succeeds", async () => {
    const replica = await startReplica(testEnv(), "minio");
    const proxy = await s3Proxy(replica);
    try {
      // slow the parts down so the stop lands while one is in flight
      proxy.add({ ...UPLOAD_PART, fault: { kind: "throttle", bytesPerSecond: 4 * 1024 * 1024 } });
      const prefix = uniqueName("sstop");
      const run = snapshot(replica, prefix, proxy.url);
      await proxy.waitFor(UPLOAD_PART);
      await sleep(500);
      await stopServer(replica, "minio", { kill: true });
      const res = await run;
      expect(proxy.seen(UPLOAD_PART).some((p) => !p.complete)).toBe(true); // it was cut in flight
      expect(oneLineFailure(res)).toMatch(
        new RegExp(
          `^crd-backup: write s3://${replica.s3.bucket}/${prefix}/snapshots/\\S+/archive\\.tar\\.zst: `,
        ),
      );

      await startServer(replica, "minio");
      expect(await listed(replica, prefix)).toEqual([]);
      // the abort could not reach a stopped MinIO, so the failed archive's multipart upload is
      // still open; it is never listed or restorable, and prune finds it through the marker the
      // write left next to the key (MinIO lists uploads only by exact key, never by prefix)
      const [failedKey] = multipartKeys(proxy, replica.s3.bucket);
      expect(await openUploads(replica.s3, [failedKey!])).toHaveLength(1);
      const storageArgs = [
        "--storage",
        `s3://${replica.s3.bucket}/${prefix}`,
        "--s3-endpoint",
        replica.s3.endpoint,
      ];
      const young = await runCli(["prune", ...storageArgs, "--keep-last", "1", "-o", "json"]);
      expect(young.code, young.stderr).toBe(0);
      expect(await openUploads(replica.s3, [failedKey!])).toHaveLength(1); // inside the 24 h grace: maybe in progress
      const pruned = await runCli([
        "prune",
        ...storageArgs,
        "--keep-last",
        "1",
        "--grace",
        "0h",
        "-o",
        "json",
      ]);
      expect(pruned.code, pruned.stderr).toBe(0);
      expect((JSON.parse(pruned.stdout) as { incompleteWrites: number }).incompleteWrites).toBe(1);
      expect(await openUploads(replica.s3, [failedKey!])).toEqual([]);

      proxy.clearRules();
      proxy.clearRequests();
      const again = await snapshot(replica, prefix, proxy.url);
      expect(again.code, again.stderr).toBe(0);
      const { id } = JSON.parse(again.stdout) as SnapshotOut;
      expect((await listed(replica, prefix)).map((s) => [s.id, s.status])).toEqual([[id, "complete"]]);
      await verified(replica, prefix, id);
      expect(await openUploads(replica.s3, multipartKeys(proxy, replica.s3.bucket))).toEqual([]);
    } finally {
      await proxy.close();
      await stopServer(replica, "minio");
    }
  });
});
