import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { KubeApiError } from "../../src/errors.ts";
import type { RestoreReportDocument } from "../../src/restore/report.ts";
import { BIG_INTS, loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, uniqueName } from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";
import { deleteFixtures } from "../support/fixtures.ts";

const RESOURCES: [string, string][] = [
  ["widgets", "v1"],
  ["clusterpolicies", "v1alpha1"],
  ["gadgets", "v2"],
];

function ownersRelinked(state: LiveState): void {
  for (const [key, refs] of state.owners) {
    for (const [kind, name, uid] of refs) {
      const plural = kind === "Widget" ? "widgets" : kind === "ClusterPolicy" ? "clusterpolicies" : "gadgets";
      const ns = kind === "ClusterPolicy" ? "" : key.split(" ")[1]!.split("/")[0];
      expect(uid, `${key} -> ${kind} ${name}`).toBe(state.uids.get(`${plural} ${ns}/${name}`));
    }
  }
}

describe("crd-backup restore", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let storage: string;
  let snapshotId: string;
  let before: LiveState;
  const reportDir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-report-"));

  beforeAll(async () => {
    admin = await adminClient();
    storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-restore-"));
    fx = await loadFixtures(admin, {
      group: `${uniqueName("rt")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("rt-a"), uniqueName("rt-b"), uniqueName("rt-c")],
      widgetsPerNamespace: 12,
      largeObject: true,
    });
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(snap.code).toBe(0);
    snapshotId = (JSON.parse(snap.stdout) as { id: string }).id;
    before = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
  });
  afterAll(() => admin.close());

  it("round trip: after every CRD and object is deleted, restore brings back every object exactly, status and owners included", async () => {
    await deleteFixtures(admin, fx);
    const reportFile = path.join(reportDir, "report.json");
    const res = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--restore-status",
      "--report",
      reportFile,
    ]);
    expect(res.stderr).not.toMatch(/error/i);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^restore from \S+ success: created \d+/);

    const report = JSON.parse(readFileSync(reportFile, "utf8")) as RestoreReportDocument;
    const objects = fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies;
    expect(report.counts.created).toBe(objects + fx.crdNames.length);
    expect(report.counts.failed).toBe(0);
    expect(report.entries.filter((e) => e.kind === "crd").map((e) => e.outcome)).toEqual([
      "created",
      "created",
      "created",
    ]);

    const after = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
    expect(after.forms.size).toBe(objects);
    for (const [key, form] of before.forms) expect(after.forms.get(key), key).toBe(form);
    // uids are new, and every ownerReference points at the new owner
    for (const [key, uid] of before.uids) expect(after.uids.get(key)).not.toBe(uid);
    ownersRelinked(after);
    const widget = [...after.forms].find(([k]) => k.endsWith("/widget-0001"))![1];
    expect(widget).toContain(BIG_INTS[1]);
    expect(widget).toContain('"phase":"Ready"');
  });

  it("a second restore of the same snapshot changes nothing", async () => {
    const res = await runCli(["restore", snapshotId, "--storage", storage, "--restore-status", "-o", "json"]);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as RestoreReportDocument;
    expect(report.counts.created + report.counts.updated + report.counts.failed).toBe(0);
    expect(report.counts.unchanged).toBe(report.entries.length);
  });

  it("--existing skip reports a changed object with a field-level diff; --existing update makes it match again", async () => {
    const [ns] = fx.namespaces;
    const p = `/apis/${fx.group}/v1/namespaces/${ns}/widgets/widget-0002`;
    await admin.request({
      method: "PATCH",
      path: p,
      body: JSON.stringify({ spec: { replicas: 77 } }),
      contentType: "application/merge-patch+json",
    });

    const skip = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "-o",
      "json",
      "--include-namespaces",
      ns!,
    ]);
    expect(skip.code).toBe(0);
    const skipped = (JSON.parse(skip.stdout) as RestoreReportDocument).entries.filter(
      (e) => e.outcome === "skipped",
    );
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({
      name: "widget-0002",
      diff: [{ path: ".spec.replicas", op: "changed" }],
    });

    const update = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "-o",
      "json",
      "--existing",
      "skip",
      "--existing-for",
      `widgets.${fx.group}=update`,
    ]);
    expect(update.code).toBe(0);
    const updated = (JSON.parse(update.stdout) as RestoreReportDocument).entries.filter(
      (e) => e.outcome === "updated",
    );
    expect(updated.map((e) => e.name)).toEqual(["widget-0002"]);
    const live = JSON.parse((await admin.request({ path: p })).text) as { spec: { replicas: number } };
    expect(live.spec.replicas).toBe(2);
  });

  it("--existing fail refuses before writing anything", async () => {
    const [ns, moved, other] = fx.namespaces;
    const fresh = uniqueName("rt-fail");
    /** `resource ns/name` -> resourceVersion of every object of the fixtures' resources: any write changes it. */
    const versions = async () => {
      const out = new Map<string, string>();
      for (const [plural, version] of RESOURCES) {
        const list = JSON.parse(
          (await admin.request({ path: `/apis/${fx.group}/${version}/${plural}` })).text,
        ) as {
          items: { metadata: { namespace?: string; name: string; resourceVersion: string } }[];
        };
        for (const { metadata: md } of list.items)
          out.set(`${plural} ${md.namespace ?? ""}/${md.name}`, md.resourceVersion);
      }
      return out;
    };
    const untouched = await versions();
    // every object the snapshot holds exists, except those --namespace-map moves into `fresh`
    const existing = [...before.forms.keys()].filter((k) => !k.includes(` ${moved}/`)).length;
    expect(existing).toBeGreaterThan(0);
    expect(existing).toBeLessThan(before.forms.size);
    const res = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--existing",
      "fail",
      "--namespace-map",
      `${fx.namespaces[1]}=${fresh}`,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/objects already exist and --existing fail was given.*nothing was written/);
    const err = await admin.request({ path: `/api/v1/namespaces/${fresh}` }).catch((e) => e);
    expect((err as KubeApiError).status).toBe(404); // not even the mapped namespace was created
    // one line: how many objects already exist (all but the moved ones), and the first of them
    const group = fx.group.replace(/\./g, "\\.");
    expect(res.stderr.trim().split("\n").at(-1)).toMatch(
      new RegExp(
        `^crd-backup: ${existing} objects already exist and --existing fail was given ` +
          `\\(first: ((widgets|gadgets)\\.${group} (${ns}|${other})/[a-z0-9-]+|clusterpolicies\\.${group} default-policy)\\); ` +
          `nothing was written$`,
      ),
    );
    // and not one object of the group was created, updated or deleted
    expect(await versions()).toEqual(untouched);
  });

  it("--dry-run validates with the server and writes nothing; --namespace-map moves objects into a new namespace", async () => {
    const fresh = uniqueName("rt-moved");
    const [from] = fx.namespaces;
    const dry = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--dry-run",
      "--include-namespaces",
      from!,
      "--namespace-map",
      `${from}=${fresh}`,
      "-o",
      "json",
    ]);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as RestoreReportDocument;
    expect(plan.dryRun).toBe(true);
    expect(plan.counts["would-create"]).toBeGreaterThan(12);
    const absent = await admin.request({ path: `/api/v1/namespaces/${fresh}` }).catch((e) => e);
    expect((absent as KubeApiError).status).toBe(404);

    const real = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--include-namespaces",
      from!,
      "--namespace-map",
      `${from}=${fresh}`,
      "-o",
      "json",
    ]);
    expect(real.code).toBe(0);
    const moved = await liveState(admin, fx.group, RESOURCES, { withStatus: false, namespaces: [fresh] });
    expect([...moved.forms.keys()].filter((k) => k.startsWith("widgets ")).length).toBe(13); // 12 + the large one
    const ns = JSON.parse((await admin.request({ path: `/api/v1/namespaces/${fresh}` })).text) as {
      metadata: { labels: Record<string, string> };
    };
    expect(ns.metadata.labels["team"]).toBe("fixtures"); // captured labels came along
    // gadgets in the new namespace are owned by the new namespace's widgets
    for (const [key, refs] of moved.owners)
      if (key.startsWith("gadgets "))
        for (const [, name, uid] of refs) expect(uid).toBe(moved.uids.get(`widgets ${fresh}/${name}`));
  });

  it("refuses a tampered archive before the first write", async () => {
    const copy = mkdtempSync(path.join(os.tmpdir(), "crd-backup-tampered-"));
    const snap = await runCli(["snapshot", "--storage", copy, "--include-groups", fx.group, "-o", "json"]);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    const archive = path.join(copy, "snapshots", id, "archive.tar.zst");
    const bytes = readFileSync(archive);
    bytes[bytes.length - 40]! ^= 0x01;
    writeFileSync(archive, bytes);
    const fresh = uniqueName("rt-tamper");
    const res = await runCli([
      "restore",
      id,
      "--storage",
      copy,
      "--namespace-map",
      `${fx.namespaces[0]}=${fresh}`,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/^crd-backup: snapshot \S+: archive .*nothing was restored/);
    const absent = await admin.request({ path: `/api/v1/namespaces/${fresh}` }).catch((e) => e);
    expect((absent as KubeApiError).status).toBe(404);
  });

  it("reports an object the server refuses with the server's message, restores the rest, and exits 3 (partial)", async () => {
    // tighten the live schema: the snapshot's widgets with 4 replicas no longer validate
    await admin.request({
      method: "PATCH",
      path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${fx.group}`,
      contentType: "application/json-patch+json",
      body: JSON.stringify([
        {
          op: "add",
          path: "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/replicas/maximum",
          value: 3,
        },
      ]),
    });
    const [from] = fx.namespaces;
    const fresh = uniqueName("rt-partial");
    const res = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--include-namespaces",
      from!,
      "--namespace-map",
      `${from}=${fresh}`,
      "-o",
      "json",
    ]);
    expect(res.code).toBe(3);
    const report = JSON.parse(res.stdout) as RestoreReportDocument;
    expect(report.status).toBe("partial");
    const failed = report.entries.filter((e) => e.outcome === "failed");
    expect(failed.map((e) => e.name).sort()).toEqual(["widget-0004", "widget-0009"]); // i % 5 == 4
    expect(failed[0]!.reason).toMatch(/Invalid.*spec\.replicas.*3/);
    expect(report.counts.created).toBeGreaterThan(10);
    // widget-0004 owned gadget-0004: with its owner refused, the reference is dropped, with a warning
    const orphan = report.entries.find((e) => e.name === "gadget-0004")!;
    expect(orphan.outcome).toBe("created");
    expect(orphan.warnings?.[0]).toMatch(
      /owner Widget widget-0004 could not be restored and is not in the cluster: ownerReference dropped/,
    );
  });
});
