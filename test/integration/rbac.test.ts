import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { KubeApiError } from "../../src/errors.ts";
import type { HttpMethod, KubeClient } from "../../src/kube/client.ts";
import type { ClusterRole } from "../../src/rbac/role.ts";
import type { RestoreReportDocument } from "../../src/restore/report.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { kubeconfigForIdentity, type PolicyRule } from "../env/identity.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, clientFor, testEnv, uniqueName } from "../support/cluster.ts";
import { liveState } from "../support/compare.ts";
import { deleteFixtures } from "../support/fixtures.ts";

const RESOURCES: [string, string][] = [
  ["widgets", "v1"],
  ["clusterpolicies", "v1alpha1"],
  ["gadgets", "v2"],
];

/** The rules of deploy/clusterrole.yaml, exactly as shipped. */
function deployRules(): PolicyRule[] {
  const file = new URL("../../deploy/clusterrole.yaml", import.meta.url);
  const [role] = parseAllDocuments(readFileSync(file, "utf8")).map(
    (d) => d.toJS() as { rules: PolicyRule[] },
  );
  return role!.rules;
}

interface SnapshotOut {
  id: string;
  status: string;
  counts: { crds: number; namespaces: number; objects: number };
  resources: { resource: string; count: number; errors: { reason: string; message: string }[] }[];
}

describe("least privilege, with real RBAC", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  const storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-rbac-"));
  let total: number;
  let readOnly: string; // kubeconfig of an identity holding only deploy/'s ClusterRole, as shipped
  let snapshotRole: ClusterRole;
  let restoreRole: ClusterRole;
  let snapshotId: string;

  const snapshot = async (kubeconfig: string, expected: number) => {
    const res = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"], {
      env: { KUBECONFIG: kubeconfig },
    });
    expect(res.code, res.stderr).toBe(expected);
    return { out: JSON.parse(res.stdout) as SnapshotOut, stderr: res.stderr };
  };

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("rbac")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("rbac-a"), uniqueName("rbac-b")],
      widgetsPerNamespace: 4,
    });
    total = fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies;
    readOnly = await kubeconfigForIdentity(testEnv(), admin, uniqueName("deploy-read"), deployRules());
  });
  afterAll(() => admin.close());

  it("deploy/'s ClusterRole as shipped reads no Secret: 403 for get, list and watch, while CRDs and namespaces read", async () => {
    const client = await clientFor(readOnly);
    const [ns] = fx.namespaces;
    const secret = uniqueName("rbac-secret");
    await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/secrets`,
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: secret },
        stringData: { k: "v" },
      }),
    });
    try {
      await client.request({
        path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${fx.crdNames[0]}`,
      });
      await client.request({ path: "/api/v1/namespaces/kube-system" });
      for (const p of [
        `/api/v1/namespaces/${ns}/secrets/${secret}`,
        `/api/v1/namespaces/${ns}/secrets`,
        "/api/v1/secrets",
        "/api/v1/secrets?watch=true&timeoutSeconds=1",
        "/api/v1/configmaps",
      ]) {
        const err = await client.request({ path: p }).catch((e: unknown) => e);
        expect(err, p).toBeInstanceOf(KubeApiError);
        expect((err as KubeApiError).status, p).toBe(403);
      }
    } finally {
      client.close();
    }
  });

  it("a snapshot with only that role is partial (exit 3): every resource named Forbidden, nothing silently skipped", async () => {
    const { out, stderr } = await snapshot(readOnly, 3);
    expect(out.status).toBe("partial");
    expect(out.counts).toMatchObject({ crds: 3, objects: 0 });
    expect(out.resources.map((r) => r.resource).sort()).toEqual(["clusterpolicies", "gadgets", "widgets"]);
    for (const r of out.resources) expect(r.errors[0]?.reason, r.resource).toBe("Forbidden");
    expect(stderr).toMatch(/resource incomplete/);
  });

  it("with crd-backup rbac's role patched over it (deploy/README.md's overlay), it reads everything and writes nothing: 403 for each write", async () => {
    // kustomize replaces a ClusterRole's rules as a whole: the overlay's role is the printed one
    const printed = await runCli(["rbac", "--include-groups", fx.group, "-o", "json"]);
    expect(printed.code, printed.stderr).toBe(0);
    const patched = (JSON.parse(printed.stdout) as ClusterRole).rules;
    for (const rule of deployRules()) expect(patched).toContainEqual(rule);
    const overlay = await kubeconfigForIdentity(testEnv(), admin, uniqueName("deploy-patched"), patched);
    const { out } = await snapshot(overlay, 0);
    expect(out.status).toBe("complete");
    expect(out.counts).toEqual({ crds: 3, namespaces: 2, objects: total });

    const client = await clientFor(overlay);
    const [ns] = fx.namespaces;
    const widgets = `/apis/${fx.group}/v1/namespaces/${ns}/widgets`;
    const crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    try {
      // reads are allowed, so every 403 below is RBAC refusing the write, not a broken identity
      const widget = (await client.request({ path: `${widgets}/widget-0000` })).text;
      const namespace = (await client.request({ path: `/api/v1/namespaces/${ns}` })).text;
      const crd = (await client.request({ path: `${crds}/${fx.crdNames[0]}` })).text;
      const fresh = (kind: string, apiVersion: string, extra: object = {}) =>
        JSON.stringify({ apiVersion, kind, metadata: { name: uniqueName("nope"), ...extra } });
      const merge = JSON.stringify({ metadata: { labels: { touched: "yes" } } });
      const writes: [HttpMethod, string, string?, string?][] = [
        ["POST", widgets, fresh("Widget", `${fx.group}/v1`, { namespace: ns })],
        ["PUT", `${widgets}/widget-0000`, widget],
        ["PATCH", `${widgets}/widget-0000`, merge, "application/merge-patch+json"],
        ["DELETE", `${widgets}/widget-0000`],
        ["POST", "/api/v1/namespaces", fresh("Namespace", "v1")],
        ["PUT", `/api/v1/namespaces/${ns}`, namespace],
        ["PATCH", `/api/v1/namespaces/${ns}`, merge, "application/merge-patch+json"],
        ["DELETE", `/api/v1/namespaces/${ns}`],
        ["PUT", `${crds}/${fx.crdNames[0]}`, crd],
        ["DELETE", `${crds}/${fx.crdNames[0]}`],
        ["POST", `/api/v1/namespaces/${ns}/configmaps`, fresh("ConfigMap", "v1", { namespace: ns })],
      ];
      for (const [method, p, body, contentType] of writes) {
        const err = await client
          .request({ method, path: p, ...(body ? { body } : {}), ...(contentType ? { contentType } : {}) })
          .catch((e: unknown) => e);
        expect(err, `${method} ${p}`).toBeInstanceOf(KubeApiError);
        expect((err as KubeApiError).status, `${method} ${p}`).toBe(403);
      }
    } finally {
      client.close();
    }
    // and nothing changed
    const after = JSON.parse((await admin.request({ path: `${widgets}/widget-0000` })).text) as {
      metadata: { labels: Record<string, string>; deletionTimestamp?: string };
    };
    expect(after.metadata.labels["touched"]).toBeUndefined();
    expect(after.metadata.deletionTimestamp).toBeUndefined();
  });

  it("crd-backup rbac prints a minimal ClusterRole (YAML or JSON) that is enough for a snapshot", async () => {
    const yaml = await runCli(["rbac", "--include-groups", fx.group]);
    expect(yaml.code, yaml.stderr).toBe(0);
    const json = await runCli(["rbac", "--include-groups", fx.group, "-o", "json"]);
    expect(json.code).toBe(0);
    snapshotRole = JSON.parse(json.stdout) as ClusterRole;
    expect(parseYaml(yaml.stdout)).toEqual(snapshotRole);
    expect(snapshotRole.metadata.name).toBe("crd-backup-read");
    expect(snapshotRole.rules).toEqual([
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "list"],
      },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get"] },
      { apiGroups: [fx.group], resources: ["clusterpolicies", "gadgets", "widgets"], verbs: ["get", "list"] },
    ]);

    const kubeconfig = await kubeconfigForIdentity(
      testEnv(),
      admin,
      uniqueName("rbac-snap"),
      snapshotRole.rules,
    );
    const { out } = await snapshot(kubeconfig, 0);
    expect(out.status).toBe("complete");
    expect(out.counts).toEqual({ crds: 3, namespaces: 2, objects: total });
    snapshotId = out.id;
  });

  it("without one resource's rule, the snapshot is partial (exit 3) and names that resource", async () => {
    // snapshot.test.ts covers a hand-written role; this one is rbac's own output, less one resource
    const rules = snapshotRole.rules.map((r) =>
      r.apiGroups[0] === fx.group ? { ...r, resources: r.resources.filter((x) => x !== "gadgets") } : r,
    );
    const kubeconfig = await kubeconfigForIdentity(testEnv(), admin, uniqueName("rbac-no-gadgets"), rules);
    const { out, stderr } = await snapshot(kubeconfig, 3);
    expect(out.status).toBe("partial");
    const gadgets = out.resources.find((r) => r.resource === "gadgets")!;
    expect(gadgets.errors[0]!.reason).toBe("Forbidden");
    expect(gadgets.errors[0]!.message).toContain(`gadgets.${fx.group}`);
    expect(out.resources.find((r) => r.resource === "widgets")!.count).toBe(fx.counts.widgets);
    expect(stderr).toMatch(/resource incomplete.*gadgets/);
  });

  it("a namespace it may not read: partial (exit 3), the namespace named in the manifest, its objects kept", async () => {
    const [readable, hidden] = fx.namespaces as [string, string];
    // get on namespaces only for kube-system (the cluster identity) and the first fixture namespace
    const rules = snapshotRole.rules.map((r) =>
      r.resources.includes("namespaces") ? { ...r, resourceNames: ["kube-system", readable] } : r,
    );
    const kubeconfig = await kubeconfigForIdentity(testEnv(), admin, uniqueName("rbac-one-ns"), rules);
    const { out, stderr } = await snapshot(kubeconfig, 3);
    expect(out.status).toBe("partial");
    expect(out.counts).toEqual({ crds: 3, namespaces: 1, objects: total });
    expect(out.resources.every((r) => r.errors.length === 0)).toBe(true);
    expect(stderr).toMatch(/namespace not captured/);

    const inspect = await runCli(["inspect", out.id, "--storage", storage, "-o", "json"]);
    expect(inspect.code, inspect.stderr).toBe(0);
    const m = JSON.parse(inspect.stdout) as {
      status: string;
      namespaceErrors: { namespace: string; reason: string; message: string }[];
    };
    expect(m.status).toBe("partial");
    expect(m.namespaceErrors).toHaveLength(1);
    expect(m.namespaceErrors[0]).toMatchObject({ namespace: hidden, reason: "Forbidden" });
    expect(m.namespaceErrors[0]!.message).toContain(hidden);
    const human = await runCli(["inspect", out.id, "--storage", storage]);
    expect(human.stdout).toContain(`namespace not captured: ${hidden}: Forbidden`);
  });

  it("crd-backup rbac --restore's role is enough to restore that snapshot: CRDs, namespaces, objects, status, updates", async () => {
    const res = await runCli(["rbac", "--restore", "--include-groups", fx.group, "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    restoreRole = JSON.parse(res.stdout) as ClusterRole;
    expect(restoreRole.metadata.name).toBe("crd-backup-restore");
    const verbs = new Set(restoreRole.rules.flatMap((r) => r.verbs));
    expect([...verbs].sort()).toEqual(["create", "get", "list", "patch"]);
    const kubeconfig = await kubeconfigForIdentity(
      testEnv(),
      admin,
      uniqueName("rbac-restore"),
      restoreRole.rules,
    );

    const before = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
    await deleteFixtures(admin, fx);
    // one namespace goes to a new name, so the restore creates a namespace too
    const [kept, moved] = fx.namespaces as [string, string];
    const target = uniqueName("rbac-moved");
    const restore = (...extra: string[]) =>
      runCli(
        [
          "restore",
          snapshotId,
          "--storage",
          storage,
          "--restore-status",
          "--namespace-map",
          `${moved}=${target}`,
          "-o",
          "json",
          ...extra,
        ],
        { env: { KUBECONFIG: kubeconfig } },
      );
    const first = await restore();
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout) as RestoreReportDocument;
    expect(report.counts.failed).toBe(0);
    expect(report.entries.every((e) => e.outcome === "created")).toBe(true);
    expect(report.entries.filter((e) => e.kind === "crd")).toHaveLength(3);
    expect(report.entries.filter((e) => e.kind === "namespace").map((e) => e.name)).toEqual([target]);
    expect(report.entries.filter((e) => e.kind === "object")).toHaveLength(total);

    // every object is back, status included, the moved ones in their new namespace
    const after = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
    expect(after.forms.size).toBe(total);
    for (const [key, form] of before.forms) {
      const [resource, where] = key.split(" ") as [string, string];
      const [ns, name] = where.split("/") as [string, string];
      if (ns === moved) {
        expect(after.forms.get(`${resource} ${target}/${name}`), key).toBe(
          form.replaceAll(`"namespace":"${moved}"`, `"namespace":"${target}"`),
        );
      } else {
        expect([kept, ""]).toContain(ns);
        expect(after.forms.get(key), key).toBe(form);
      }
    }
    expect(after.forms.get(`widgets ${target}/widget-0001`)).toContain('"phase":"Ready"');

    // --existing update: server-side apply over a changed object (patch) is allowed too
    await admin.request({
      method: "PATCH",
      path: `/apis/${fx.group}/v1/namespaces/${kept}/widgets/widget-0002`,
      body: JSON.stringify({ spec: { replicas: 3 } }),
      contentType: "application/merge-patch+json",
    });
    const second = await restore("--existing", "update");
    expect(second.code, second.stderr).toBe(0);
    const updated = (JSON.parse(second.stdout) as RestoreReportDocument).entries.filter(
      (e) => e.outcome === "updated",
    );
    expect(updated.map((e) => `${e.namespace}/${e.name}`)).toEqual([`${kept}/widget-0002`]);
    const widget = JSON.parse(
      (await admin.request({ path: `/apis/${fx.group}/v1/namespaces/${kept}/widgets/widget-0002` })).text,
    ) as { spec: { replicas: number } };
    expect(widget.spec.replicas).toBe(2); // as in the snapshot
  });
});
