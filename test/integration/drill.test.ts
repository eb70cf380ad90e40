import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { DRILL_LABEL, type DrillReport } from "../../src/drill/drill.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { collectionPath, CRD_PATH } from "../../src/kube/discovery.ts";
import { listPages } from "../../src/kube/list.ts";
import { startEnvironment, stopEnvironment, type EnvironmentInfo } from "../env/environment.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, clientFor, testEnv, uniqueName } from "../support/cluster.ts";
import { liveState } from "../support/compare.ts";

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), `crd-backup-drill-${p}-`));

async function exists(client: KubeClient, p: string): Promise<boolean> {
  try {
    await client.request({ path: p });
    return true;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return false;
    throw e;
  }
}

async function names(client: KubeClient, p: string, labelSelector?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const page of listPages(client, p, { pageSize: 500, labelSelector })) {
    for (const o of page) {
      const md = o["metadata"] as { namespace?: string; name: string };
      out.push(`${md.namespace ?? ""}/${md.name}`);
    }
  }
  return out.sort();
}

describe("crd-backup drill", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  const storage = tmp("storage");
  let snapshotId: string;
  const totalNamespaced = () => fx.counts.widgets + fx.counts.gadgets;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("drill")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("drill-a"), uniqueName("drill-b")],
      widgetsPerNamespace: 5,
    });
    const res = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    snapshotId = (JSON.parse(res.stdout) as { id: string }).id;
  });
  afterAll(() => admin.close());

  it("refuses to drill into the snapshot's own namespaces (usage error, exit 2, nothing written)", async () => {
    const res = await runCli(["drill", snapshotId, "--storage", storage]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/the target is the cluster snapshot .* was taken from.*--namespace-prefix/);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("on the same cluster with --namespace-prefix: restores into scratch namespaces, checks every object, reports RTO, leaves the source untouched", async () => {
    const prefix = `${uniqueName("d")}-`;
    const dir = tmp("out");
    const report = path.join(dir, "drill.json");
    const metrics = path.join(dir, "drill.prom");
    const before = await liveState(
      admin,
      fx.group,
      [
        ["widgets", "v1"],
        ["gadgets", "v2"],
      ],
      {
        withStatus: true,
        namespaces: fx.namespaces,
      },
    );
    const res = await runCli([
      "drill",
      snapshotId,
      "--storage",
      storage,
      "--namespace-prefix",
      prefix,
      "--report",
      report,
      "--metrics-file",
      metrics,
    ]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/: PASS/);
    expect(res.stdout).toMatch(/recovery time [\d.]+s/);

    const r = JSON.parse(readFileSync(report, "utf8")) as DrillReport;
    expect(r.result).toBe("pass");
    expect(r.reasons).toEqual([]);
    expect(r.target.sameCluster).toBe(true);
    expect(r.objects).toMatchObject({
      expected: totalNamespaced(),
      matched: totalNamespaced(),
      missing: 0,
      changed: 0,
    });
    expect(r.timings.rto).toBeGreaterThan(0);
    expect(r.timings.rto).toBeCloseTo(r.timings.restore + r.timings.check, 1);
    expect(r.objects.perSecond).toBeGreaterThan(0);
    // the cluster-scoped resource would be the live objects themselves: reported, not drilled
    expect(r.notDrilled.map((n) => n.resource)).toEqual([`clusterpolicies.${fx.group}`]);
    expect(r.restore.counts.created).toBe(totalNamespaced() + fx.namespaces.length);

    // the copies are in the prefixed namespaces, labelled with the drill id; the source did not move
    const drilled = await names(
      admin,
      collectionPath(fx.group, "v1", "widgets"),
      `${DRILL_LABEL}=${r.drillId}`,
    );
    expect(drilled).toHaveLength(fx.counts.widgets);
    expect(drilled.every((k) => k.startsWith(prefix))).toBe(true);
    for (const ns of fx.namespaces)
      expect(await exists(admin, `/api/v1/namespaces/${prefix}${ns}`)).toBe(true);
    const after = await liveState(
      admin,
      fx.group,
      [
        ["widgets", "v1"],
        ["gadgets", "v2"],
      ],
      {
        withStatus: true,
        namespaces: fx.namespaces,
      },
    );
    expect(after.forms).toEqual(before.forms);
    expect(after.uids).toEqual(before.uids);

    const prom = readFileSync(metrics, "utf8");
    expect(prom).toMatch(/^crd_backup_drill_success 1$/m);
    expect(prom).toMatch(/^crd_backup_drill_rto_seconds [\d.]+$/m);
    expect(prom).toMatch(/^crd_backup_drill_objects\{state="missing"\} 0$/m);
  });

  it("fails, naming the object and the field, when the target already holds a different copy; exit 1 and success 0", async () => {
    const prefix = `${uniqueName("d")}-`;
    const [ns] = fx.namespaces;
    const target = `${prefix}${ns}`;
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: target } }),
    });
    await admin.request({
      method: "POST",
      path: collectionPath(fx.group, "v1", "widgets", target),
      body: JSON.stringify({
        apiVersion: `${fx.group}/v1`,
        kind: "Widget",
        metadata: { name: "widget-0002", namespace: target },
        spec: { size: "large", replicas: 4 },
      }),
    });
    const metrics = path.join(tmp("out"), "drill.prom");
    const res = await runCli([
      "drill",
      snapshotId,
      "--storage",
      storage,
      "--namespace-prefix",
      prefix,
      "--metrics-file",
      metrics,
      "-o",
      "json",
    ]);
    expect(res.code).toBe(1);
    const r = JSON.parse(res.stdout) as DrillReport;
    expect(r.result).toBe("fail");
    expect(r.reasons).toContain("1 objects in the target differ from the snapshot");
    const check = r.checks.find((c) => c.resource === `widgets.${fx.group}`)!;
    expect(check.changed.map((c) => c.object)).toEqual([`${target}/widget-0002`]);
    expect(check.changed[0]!.diff!.map((d) => d.path)).toContain(".spec.counter");
    // a drill never modifies what it did not create
    const kept = JSON.parse(
      (await admin.request({ path: `${collectionPath(fx.group, "v1", "widgets", target)}/widget-0002` }))
        .text,
    ) as { spec: { replicas: number }; metadata: { labels?: Record<string, string> } };
    expect(kept.spec.replicas).toBe(4);
    expect(kept.metadata.labels?.[DRILL_LABEL]).toBeUndefined();
    expect(readFileSync(metrics, "utf8")).toMatch(/^crd_backup_drill_success 0$/m);
  });

  it("--cleanup deletes exactly what the drill created (objects held by copied finalizers with --remove-finalizers)", async () => {
    const prefix = `${uniqueName("d")}-`;
    // something in a drill namespace the drill did not create must survive cleanup
    const [ns] = fx.namespaces;
    const target = `${prefix}${ns}`;
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: target } }),
    });
    await admin.request({
      method: "POST",
      path: collectionPath(fx.group, "v1", "widgets", target),
      body: JSON.stringify({
        apiVersion: `${fx.group}/v1`,
        kind: "Widget",
        metadata: { name: "bystander", namespace: target },
        spec: { size: "small" },
      }),
    });
    const res = await runCli([
      "drill",
      snapshotId,
      "--storage",
      storage,
      "--namespace-prefix",
      prefix,
      "--cleanup",
      "--remove-finalizers",
      "-o",
      "json",
    ]);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as DrillReport;
    expect(r.result).toBe("pass");
    expect(r.cleanup).toMatchObject({ objects: totalNamespaced(), heldByFinalizers: 0, failures: [] });
    // the namespace the test made is not the drill's; the other one is, and its deletion was requested
    expect(r.cleanup!.namespaces).toBe(fx.namespaces.length - 1);
    expect(await names(admin, collectionPath(fx.group, "v1", "widgets", target))).toEqual([
      `${target}/bystander`,
    ]);
    expect(await names(admin, collectionPath(fx.group, "v2", "gadgets", target))).toEqual([]);
    expect(
      await names(admin, collectionPath(fx.group, "v1", "widgets"), `${DRILL_LABEL}=${r.drillId}`),
    ).toEqual([]);
  });

  it("a tampered snapshot fails the drill in one line before anything is written", async () => {
    const copy = tmp("tampered");
    const res0 = await runCli(["snapshot", "--storage", copy, "--include-groups", fx.group, "-o", "json"]);
    const id = (JSON.parse(res0.stdout) as { id: string }).id;
    const archive = path.join(copy, "snapshots", id, "archive.tar.zst");
    const bytes = readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(archive, bytes);
    const prefix = `${uniqueName("d")}-`;
    const report = path.join(tmp("out"), "drill.json");
    const res = await runCli([
      "drill",
      id,
      "--storage",
      copy,
      "--namespace-prefix",
      prefix,
      "--report",
      report,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/nothing was restored/);
    expect(JSON.parse(readFileSync(report, "utf8"))).toMatchObject({ result: "fail" });
    for (const ns of fx.namespaces)
      expect(await exists(admin, `/api/v1/namespaces/${prefix}${ns}`)).toBe(false);
  });

  describe("into another cluster (--target-context)", () => {
    let target: EnvironmentInfo;
    let targetAdmin: KubeClient;
    let kubeconfig: string;

    beforeAll(async () => {
      target = await startEnvironment({ log: () => {} });
      targetAdmin = await clientFor(target.kubeconfig);
      // one kubeconfig, two contexts: the way a user points a drill at a DR cluster
      const source = JSON.parse(readFileSync(testEnv().kubeconfig, "utf8")) as Record<string, unknown[]>;
      const dst = JSON.parse(readFileSync(target.kubeconfig, "utf8")) as Record<string, unknown[]>;
      const rename = (cfg: Record<string, unknown[]>, name: string) => ({
        cluster: { ...(cfg["clusters"]![0] as object), name },
        user: { ...(cfg["users"]![0] as object), name },
        context: { name, context: { cluster: name, user: name } },
      });
      const a = rename(source, "source");
      const b = rename(dst, "dr");
      kubeconfig = path.join(tmp("kubeconfig"), "config");
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [a.cluster, b.cluster],
          users: [a.user, b.user],
          contexts: [a.context, b.context],
          "current-context": "source",
        }),
      );
    }, 120_000);
    afterAll(async () => {
      targetAdmin?.close();
      if (target) await stopEnvironment(target);
    });

    const resources: [string, string][] = [
      ["widgets", "v1"],
      ["gadgets", "v2"],
      ["clusterpolicies", "v1alpha1"],
    ];
    const total = () => fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies;

    it("drills everything, CRDs and cluster-scoped objects included, and --cleanup leaves the target as it was", async () => {
      const res = await runCli(
        [
          "drill",
          snapshotId,
          "--storage",
          storage,
          "--target-context",
          "dr",
          "--cleanup",
          "--remove-finalizers",
          "-o",
          "json",
        ],
        { env: { KUBECONFIG: kubeconfig } },
      );
      expect(res.code, res.stderr).toBe(0);
      const r = JSON.parse(res.stdout) as DrillReport;
      expect(r.result).toBe("pass");
      expect(r.target.sameCluster).toBe(false);
      expect(r.notDrilled).toEqual([]);
      expect(r.objects).toMatchObject({ expected: total(), matched: total(), missing: 0, changed: 0 });
      expect(r.checks.every((c) => c.crdEstablished)).toBe(true);
      expect(r.cleanup).toMatchObject({
        objects: total(),
        crds: fx.crdNames.length,
        namespaces: fx.namespaces.length,
        failures: [],
      });
      // CRD deletion completes in the API server itself; namespaces stay Terminating without a controller manager
      const deadline = Date.now() + 30_000;
      for (const crd of fx.crdNames) {
        while ((await exists(targetAdmin, `${CRD_PATH}/${crd}`)) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 200));
        expect(await exists(targetAdmin, `${CRD_PATH}/${crd}`)).toBe(false);
      }
      for (const ns of fx.namespaces) {
        const got = JSON.parse((await targetAdmin.request({ path: `/api/v1/namespaces/${ns}` })).text) as {
          metadata: { deletionTimestamp?: string };
        };
        expect(got.metadata.deletionTimestamp).toBeDefined();
      }
    });

    it("with --restore-status, the target ends up equal to the source, status included (checked independently of the drill)", async () => {
      // the namespaces of the previous drill are still terminating: map into fresh ones
      const prefix = `${uniqueName("dr")}-`;
      const res = await runCli(
        [
          "drill",
          snapshotId,
          "--storage",
          storage,
          "--target-context",
          "dr",
          "--namespace-prefix",
          prefix,
          "--restore-status",
          "-o",
          "json",
        ],
        { env: { KUBECONFIG: kubeconfig } },
      );
      expect(res.code, res.stderr).toBe(0);
      const r = JSON.parse(res.stdout) as DrillReport;
      expect(r.result).toBe("pass");
      expect(r.objects.matched).toBe(total());
      const src = await liveState(admin, fx.group, resources, {
        withStatus: true,
        namespaces: fx.namespaces,
      });
      const dst = await liveState(targetAdmin, fx.group, resources, {
        withStatus: true,
        namespaces: fx.namespaces.map((n) => `${prefix}${n}`),
      });
      const normalize = (forms: Map<string, string>, from: string) =>
        new Map(
          [...forms].map(([k, v]) => [
            k.replace(` ${from}`, " "),
            v
              .replace(new RegExp(`"namespace":"${from}`, "g"), '"namespace":"')
              .split(`"${DRILL_LABEL}":"${r.drillId}"`)
              .join("")
              .replace('"labels":{},', "")
              .replace(/,,/g, ",")
              .replace(/{,/g, "{")
              .replace(/,}/g, "}"),
          ]),
        );
      expect(normalize(dst.forms, prefix)).toEqual(normalize(src.forms, ""));
      expect(dst.forms.size).toBe(total());
    });
  });
});
