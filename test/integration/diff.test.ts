import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { DiffResult } from "../../src/diff/snapshot-diff.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, uniqueName } from "../support/cluster.ts";

describe("crd-backup diff", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  const storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-diff-"));
  let first: string;

  const snapshot = async () => {
    const res = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(res.code).toBe(0);
    return (JSON.parse(res.stdout) as { id: string }).id;
  };

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("diff")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("diff-a"), uniqueName("diff-b")],
      widgetsPerNamespace: 6,
    });
    first = await snapshot();
  });
  afterAll(() => admin.close());

  it("finds a fresh snapshot identical to the cluster (exit 0)", async () => {
    const res = await runCli(["diff", first, "--storage", storage]);
    expect(res.stdout).toMatch(/identical/);
    expect(res.code).toBe(0);
  });

  it("after a deliberate change, names the changed field, the missing object and the new one (exit 4); and so does snapshot vs snapshot", async () => {
    const [ns] = fx.namespaces;
    const base = `/apis/${fx.group}/v1/namespaces/${ns}/widgets`;
    await admin.request({
      method: "PATCH",
      path: `${base}/widget-0001`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ spec: { replicas: 9 }, metadata: { labels: { tier: "new" } } }),
    });
    await admin.request({
      method: "PATCH",
      path: `${base}/widget-0003`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ metadata: { finalizers: null } }),
    });
    await admin.request({ method: "DELETE", path: `${base}/widget-0003` });
    await admin.request({
      method: "POST",
      path: base,
      body: JSON.stringify({
        apiVersion: `${fx.group}/v1`,
        kind: "Widget",
        metadata: { name: "widget-new" },
        spec: { size: "small" },
      }),
    });
    // a status-only change is not a difference unless --status asks for it
    const w5 = JSON.parse((await admin.request({ path: `${base}/widget-0005` })).text) as Record<
      string,
      unknown
    >;
    await admin.request({
      method: "PUT",
      path: `${base}/widget-0005/status`,
      body: JSON.stringify({ ...w5, status: { phase: "Degraded" } }),
    });

    const res = await runCli(["diff", first, "--storage", storage, "-o", "json"]);
    expect(res.code).toBe(4);
    const result = JSON.parse(res.stdout) as DiffResult;
    expect(result.identical).toBe(false);
    const widgets = result.resources.find((r) => r.resource === `widgets.${fx.group}`)!;
    expect(widgets.onlyInSnapshot).toEqual([`${ns}/widget-0003`]);
    expect(widgets.onlyInOther).toEqual([`${ns}/widget-new`]);
    expect(widgets.changed).toEqual([
      {
        object: `${ns}/widget-0001`,
        diff: [
          { path: ".metadata.labels.tier", op: "added" },
          { path: ".spec.replicas", op: "changed" },
        ],
      },
    ]);
    expect(
      result.resources.filter((r) => r !== widgets).every((r) => !r.changed.length && !r.onlyInOther.length),
    ).toBe(true);

    const withStatus = JSON.parse(
      (await runCli(["diff", first, "--storage", storage, "--status", "-o", "json"])).stdout,
    ) as DiffResult;
    expect(
      withStatus.resources.find((r) => r.resource === `widgets.${fx.group}`)!.changed.map((c) => c.object),
    ).toContain(`${ns}/widget-0005`);

    const second = await snapshot();
    const both = await runCli(["diff", first, second, "--storage", storage, "-o", "json"]);
    expect(both.code).toBe(4);
    const between = (JSON.parse(both.stdout) as DiffResult).resources.find(
      (r) => r.resource === `widgets.${fx.group}`,
    )!;
    expect(between).toMatchObject({
      onlyInSnapshot: [`${ns}/widget-0003`],
      onlyInOther: [`${ns}/widget-new`],
    });
    expect(between.changed.map((c) => c.object)).toEqual([`${ns}/widget-0001`]);
    expect((await runCli(["diff", second, "--storage", storage])).code).toBe(0);
  });
});
