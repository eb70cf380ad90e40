import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { kubeProxy, kubeconfigThrough, type FaultProxy, type FaultRule } from "../env/fault-proxy.ts";
import { runCli, type CliResult } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { archiveContent, type ArchiveContent } from "../support/faults.ts";

// Snapshots taken through the fault proxy in front of the real kube-apiserver. Each transient
// fault must leave the archive holding exactly what a fault-free snapshot of the same cluster
// holds (entry by entry, by SHA-256); faults that outlast the retries must fail the run cleanly.

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

interface SnapshotOut {
  id: string;
  status: string;
  resources: { resource: string; count: number; consistent: boolean; errors: { reason: string }[] }[];
}

describe("snapshot under kube-apiserver faults", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let proxy: FaultProxy;
  let kubeconfig: string;
  let baseline: ArchiveContent;
  let widgets: RegExp;

  const storageUrl = (prefix: string) => `s3://${testEnv().s3.bucket}/${prefix}`;
  const snapshot = (prefix: string, extra: string[] = []): Promise<CliResult> =>
    runCli(
      [
        "snapshot",
        "--storage",
        storageUrl(prefix),
        "--include-groups",
        fx.group,
        "--page-size",
        "4",
        "-o",
        "json",
        ...extra,
      ],
      { env: { KUBECONFIG: kubeconfig } },
    );
  const listed = async (prefix: string) => {
    const res = await runCli(["list", "--storage", storageUrl(prefix), "-o", "json"]);
    expect(res.code).toBe(0);
    return JSON.parse(res.stdout) as { id: string; status: string }[];
  };

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("faults")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("faults-a"), uniqueName("faults-b")],
      widgetsPerNamespace: 9,
      largeObject: false,
    });
    widgets = new RegExp(`^/apis/${escape(fx.group)}/v1/widgets$`);
    proxy = await kubeProxy(testEnv());
    kubeconfig = kubeconfigThrough(proxy, testEnv());
    // the reference: the same cluster, through the same proxy, with no fault
    const prefix = uniqueName("faults-ref");
    const res = await snapshot(prefix);
    expect(res.code, res.stderr).toBe(0);
    baseline = await archiveContent(testEnv().s3, prefix, (JSON.parse(res.stdout) as SnapshotOut).id);
    expect(baseline.manifest.counts.objects).toBe(
      fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies,
    );
    expect(proxy.requests.every((r) => r.fault === undefined && r.status === 200)).toBe(true);
  });
  afterAll(async () => {
    admin.close();
    await proxy.close();
  });

  const transient: [string, FaultRule, string[]][] = [
    [
      "429 with Retry-After: 1 on the first two list pages",
      { method: "GET", count: { first: 2 }, fault: { kind: "status", status: 429, retryAfterSeconds: 1 } },
      [],
    ],
    [
      "500 on the first two list pages",
      { method: "GET", count: { first: 2 }, fault: { kind: "status", status: 500 } },
    ],
    [
      "503 on every third list page",
      { method: "GET", count: { every: 3 }, fault: { kind: "status", status: 503 } },
    ],
    [
      "a connection reset in the middle of a page's body, twice",
      { method: "GET", count: { first: 2 }, fault: { kind: "reset", afterBytes: 300 } },
      [],
    ],
    [
      "an answer slower than --request-timeout, once",
      { method: "GET", count: { first: 1 }, fault: { kind: "delay", ms: 2500 } },
      ["--request-timeout", "1"],
    ],
  ].map(([name, rule, extra]) => [name as string, rule as FaultRule, (extra ?? []) as string[]]);

  it.each(transient)(
    "%s: retried, and the archive holds exactly the fault-free content",
    async (_, rule, extra) => {
      proxy.clearRules();
      proxy.clearRequests();
      const handle = proxy.add({ ...rule, path: widgets, query: (q) => q.has("limit") });
      const prefix = uniqueName("faults");
      const started = performance.now();
      const res = await snapshot(prefix, extra);
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout) as SnapshotOut;
      expect(out.status).toBe("complete");
      expect(out.resources.every((r) => r.consistent)).toBe(true);

      // the fault really happened, and each faulted request was asked again
      expect(handle.injected).toBeGreaterThanOrEqual(1);
      const seen = proxy.seen({ path: widgets });
      const key = (r: (typeof seen)[number]) => r.query.get("continue") ?? "";
      for (const [i, r] of seen.entries()) {
        if (!r.fault) continue;
        const retry = seen.slice(i + 1).find((s) => key(s) === key(r));
        expect(retry, `${r.fault} on ${key(r) || "the first page"} retried`).toBeDefined();
        if (rule.fault.kind === "status" && rule.fault.retryAfterSeconds) {
          expect(retry!.at - r.at).toBeGreaterThanOrEqual(rule.fault.retryAfterSeconds * 1000 - 50); // Retry-After honoured
        }
      }
      expect(seen.filter((r) => !r.fault && r.status === 200).length).toBe(Math.ceil(fx.counts.widgets / 4));
      expect(performance.now() - started).toBeLessThan(30_000);

      const got = await archiveContent(testEnv().s3, prefix, out.id);
      expect(got.duplicates).toEqual([]);
      expect(got.entries).toEqual(baseline.entries);
      expect(got.manifest.counts).toEqual(baseline.manifest.counts);
    },
  );

  it("an answer that trickles in for longer than --request-timeout in all: abandoned at the limit and retried", async () => {
    proxy.clearRules();
    proxy.clearRequests();
    // about 1 KiB/s: never idle for 1 s, but a page takes several seconds to arrive
    proxy.add({
      path: widgets,
      count: { first: 1 },
      fault: { kind: "throttle", bytesPerSecond: 1024, direction: "response" },
    });
    const prefix = uniqueName("faults-trickle");
    const res = await snapshot(prefix, ["--request-timeout", "1"]);
    expect(res.code, res.stderr).toBe(0);
    const [slow, retry] = proxy.seen({ path: widgets });
    expect(slow).toMatchObject({ fault: "throttle", complete: false }); // the client gave up on it...
    expect(retry!.query.get("continue")).toBe(slow!.query.get("continue")); // ...and asked again
    expect(retry!.at - slow!.at).toBeLessThan(3000);
    const got = await archiveContent(testEnv().s3, prefix, (JSON.parse(res.stdout) as SnapshotOut).id);
    expect(got.entries).toEqual(baseline.entries);
  });

  it("410 Expired on a continue token: continued with the server's token, nothing lost or duplicated, and flagged inconsistent", async () => {
    proxy.clearRules();
    proxy.clearRequests();
    proxy.add({
      method: "GET",
      path: widgets,
      query: (q) => q.has("continue"),
      count: { first: 1 },
      fault: { kind: "expire-continue" },
    });
    const prefix = uniqueName("faults-410");
    const res = await snapshot(prefix);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as SnapshotOut;
    expect(out.status).toBe("complete");
    expect(out.resources.find((r) => r.resource === "widgets")).toMatchObject({
      count: fx.counts.widgets,
      consistent: false,
    });
    expect(out.resources.filter((r) => r.resource !== "widgets").every((r) => r.consistent)).toBe(true);
    expect(res.stderr).toMatch(/listing was not consistent: a continue token expired/);

    const got = await archiveContent(testEnv().s3, prefix, out.id);
    expect(got.manifest.resources.find((r) => r.plural === "widgets")!.consistent).toBe(false);
    expect(got.duplicates).toEqual([]);
    expect(got.entries).toEqual(baseline.entries); // the cluster did not change: nothing lost, nothing twice
    const inspect = await runCli(["inspect", out.id, "--storage", storageUrl(prefix)]);
    expect(inspect.stdout).toMatch(new RegExp(`widgets\\.${escape(fx.group)}\\s.*\\sno\\s`));
  });

  describe("faults that outlast the retries", () => {
    const oneLineFailure = (res: CliResult) => {
      expect(res.code).toBe(1);
      const last = res.stderr.trim().split("\n").at(-1)!;
      expect(last).toMatch(/^crd-backup: /);
      expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
      return last;
    };

    it("503 on every CRD listing: exit 1 with one line, nothing listed", async () => {
      proxy.clearRules();
      proxy.clearRequests();
      const crds = /^\/apis\/apiextensions\.k8s\.io\/v1\/customresourcedefinitions$/;
      proxy.add({ path: crds, fault: { kind: "status", status: 503 } });
      const prefix = uniqueName("faults-503");
      const res = await snapshot(prefix);
      expect(oneLineFailure(res)).toMatch(/customresourcedefinitions: 503 ServiceUnavailable/);
      expect(proxy.seen({ path: crds }).length).toBe(6); // the retry budget: 6 attempts
      expect(await listed(prefix)).toEqual([]);
    });

    it("resets on every page of one resource: exit 1 with one line, nothing listed", async () => {
      proxy.clearRules();
      proxy.clearRequests();
      proxy.add({ path: widgets, fault: { kind: "reset", afterBytes: 100 } });
      const prefix = uniqueName("faults-reset");
      const res = await snapshot(prefix);
      expect(oneLineFailure(res)).toMatch(/widgets: .*dropped in the middle of the answer/);
      expect(await listed(prefix)).toEqual([]);
    });

    it("answers slower than --request-timeout every time: exit 1 with one line, nothing listed", async () => {
      proxy.clearRules();
      proxy.clearRequests();
      proxy.add({ path: widgets, fault: { kind: "delay", ms: 1500 } });
      const prefix = uniqueName("faults-slow");
      const res = await snapshot(prefix, ["--request-timeout", "1"]);
      expect(oneLineFailure(res)).toMatch(/widgets: .*no complete answer within 1000 ms/);
      expect(await listed(prefix)).toEqual([]);
    });

    it("503 on every page of one resource: partial (exit 3), the resource named, never listed as complete", async () => {
      proxy.clearRules();
      proxy.clearRequests();
      proxy.add({ path: widgets, fault: { kind: "status", status: 503 } });
      const prefix = uniqueName("faults-partial");
      const res = await snapshot(prefix);
      expect(res.code).toBe(3);
      const out = JSON.parse(res.stdout) as SnapshotOut;
      expect(out.status).toBe("partial");
      const w = out.resources.find((r) => r.resource === "widgets")!;
      expect(w.errors).toEqual([expect.objectContaining({ reason: "ServiceUnavailable" })]);
      expect(out.resources.filter((r) => r.resource !== "widgets").every((r) => r.errors.length === 0)).toBe(
        true,
      );
      expect((await listed(prefix)).map((s) => s.status)).toEqual(["partial"]);
    });
  });
});
