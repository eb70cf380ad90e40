/**
 * Forged snapshots through the real CLI (issue 21, item 2). Anyone with the backup job's write
 * credential can store a snapshot, so each one here is made the way a forger would: a valid
 * archive from crd-backup's own writer and a manifest that agrees with it, holding a real custom
 * resource (CRD, namespace, object) beside what must never be restored. Each is refused whole
 * while planning: exit 1, one line naming the resource, no write reaching the API server (every
 * request goes through a recording proxy), and nothing of the archive in the cluster.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newSnapshotId, type ObjectRef } from "../../src/archive/format.ts";
import {
  archiveFields,
  serializeManifest,
  type Manifest,
  type ManifestResource,
} from "../../src/archive/manifest.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { BUILTIN_GROUPS_OFF_BY_DEFAULT, BUILTIN_GROUPS_SERVED } from "../../src/kube/builtin-groups.ts";
import { CRD_PATH } from "../../src/kube/discovery.ts";
import { archiveKey, manifestKey } from "../../src/storage/layout.ts";
import { kubeconfigThrough, kubeProxy, type FaultProxy } from "../env/fault-proxy.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { writeArchive } from "../unit/archive/helpers.ts";

type Resource = Pick<ManifestResource, "group" | "version" | "plural" | "kind" | "namespaced">;
interface Entry {
  resource: Resource;
  namespace?: string;
  name: string;
  body: object;
}
interface Forgery {
  crds: object[];
  namespaces: string[];
  objects: Entry[];
  /** Listed in the manifest besides the objects' resources (e.g. with no object at all). */
  extraResources?: Resource[];
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function crd(group: string, plural: string, kind: string, conversion?: object): object {
  const schema = { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      scope: "Namespaced",
      versions: [
        { name: "v1", served: true, storage: true, schema },
        ...(conversion ? [{ name: "v1beta1", served: true, storage: false, schema }] : []),
      ],
      ...(conversion ? { conversion } : {}),
    },
  };
}

/** A real custom resource: a CRD (not in the cluster), a namespace (nor that) and one object. */
function legit(): { forgery: Forgery; group: string; crdName: string; namespace: string } {
  const group = `${uniqueName("forged")}.fixtures.crd-backup.io`;
  const namespace = uniqueName("forged");
  const widgets: Resource = { group, version: "v1", plural: "widgets", kind: "Widget", namespaced: true };
  return {
    group,
    crdName: `widgets.${group}`,
    namespace,
    forgery: {
      crds: [crd(group, "widgets", "Widget")],
      namespaces: [namespace],
      objects: [
        {
          resource: widgets,
          namespace,
          name: "w1",
          body: { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w1", namespace }, spec: {} },
        },
      ],
    },
  };
}

/**
 * Writes the forgery as a stored snapshot in `where`, with crd-backup's own archive writer; the
 * manifest is made to agree with the archive, then `edit` may change its JSON past what
 * serializeManifest would allow.
 */
async function store(
  where: string,
  f: Forgery,
  options: { at?: Date; edit?: (doc: { resources: Resource[] }) => void } = {},
): Promise<string> {
  const when = options.at ?? new Date();
  const id = newSnapshotId(when); // startedAt must name the id's second
  const { bytes, totals } = await writeArchive(async (w) => {
    // in the order a snapshot adds them (the writer checks it)
    for (const c of f.crds) await w.addCrd((c as { metadata: { name: string } }).metadata.name, json(c));
    for (const o of f.objects) {
      const ref: ObjectRef = { ...o.resource, name: o.name };
      if (o.namespace) ref.namespace = o.namespace;
      await w.addObject(ref, json(o.body), { uid: uniqueName("uid") });
    }
    for (const ns of f.namespaces)
      await w.addNamespace(ns, json({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }));
  }, id);
  const byKey = new Map<string, ManifestResource>();
  for (const r of [...f.objects.map((o) => o.resource), ...(f.extraResources ?? [])]) {
    const key = `${r.plural}.${r.group}`;
    const m = byKey.get(key) ?? {
      ...r,
      storageVersion: r.version,
      servedVersions: [r.version],
      count: 0,
      bytes: 0,
      listResourceVersion: "1",
      consistent: true,
      errors: [],
    };
    byKey.set(key, m);
  }
  for (const o of f.objects) {
    const m = byKey.get(`${o.resource.plural}.${o.resource.group}`)!;
    m.count++;
    m.bytes += json(o.body).length;
  }
  const at = when.toISOString();
  const manifest: Manifest = {
    toolVersion: "0.1.0",
    snapshotId: id,
    status: "complete",
    cluster: { uid: "forged-cluster", server: "https://forged.example:6443", serverVersion: "v1.36.4" },
    startedAt: at,
    finishedAt: at,
    options: {},
    resources: [...byKey.values()],
    namespaceErrors: [],
    ...archiveFields(totals),
  };
  const doc = JSON.parse(serializeManifest(manifest)) as { resources: Resource[] };
  options.edit?.(doc);
  mkdirSync(path.join(where, "snapshots", id), { recursive: true });
  writeFileSync(path.join(where, archiveKey(id)), bytes);
  writeFileSync(path.join(where, manifestKey(id)), JSON.stringify(doc, null, 2));
  return id;
}

describe("forged archives: restore writes only custom resources", () => {
  let admin: KubeClient;
  let proxy: FaultProxy;
  let kubeconfig: string;
  const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-forged-"));

  beforeAll(async () => {
    admin = await adminClient();
    proxy = await kubeProxy(testEnv());
    kubeconfig = kubeconfigThrough(proxy, testEnv());
  });
  afterAll(async () => {
    await proxy?.close();
    admin?.close();
  });

  const status = (p: string) =>
    admin.request({ path: p }).then(
      () => 200,
      (e: unknown) => (e instanceof KubeApiError ? e.status : -1),
    );

  /** Restores `ref` from `where` through the proxy: exit 1, one line matching `pattern`, no write. */
  async function refused(where: string, ref: string, pattern: RegExp, extra: string[] = []): Promise<string> {
    proxy.clearRequests();
    const res = await runCli(["restore", ref, "--storage", where, "--existing", "update", ...extra], {
      env: { KUBECONFIG: kubeconfig },
    });
    expect(res.code, res.stderr).toBe(1);
    const lines = res.stderr.trim().split("\n");
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^crd-backup: /);
    expect(lines[0]).toMatch(pattern);
    expect(res.stdout).toBe("");
    expect(proxy.requests.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path}`)).toEqual([]);
    return lines[0]!;
  }

  /** Nothing of the legitimate part of the forgery reached the cluster either. */
  async function nothingOf(l: ReturnType<typeof legit>): Promise<void> {
    expect(await status(`${CRD_PATH}/${l.crdName}`)).toBe(404);
    expect(await status(`/api/v1/namespaces/${l.namespace}`)).toBe(404);
  }

  it("refuses a ClusterRoleBinding (rbac.authorization.k8s.io), even with --existing update", async () => {
    const l = legit();
    const name = uniqueName("forged-admin");
    l.forgery.objects.push({
      resource: {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
      },
      name,
      body: {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "forger" }],
      },
    });
    const where = mkdtempSync(path.join(dir, "crb-"));
    const id = await store(where, l.forgery);
    const line = await refused(
      where,
      "latest",
      /refusing clusterrolebindings\.rbac\.authorization\.k8s\.io: rbac\.authorization\.k8s\.io is a built-in API group; crd-backup restores only custom resources/,
    );
    expect(line).toContain(`snapshot ${id}: `);
    expect(await status(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`)).toBe(404);
    await nothingOf(l);
  });

  it("refuses a Deployment (apps), and with it the namespace it would have gone into", async () => {
    const l = legit();
    l.forgery.objects.push({
      resource: { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true },
      namespace: l.namespace,
      name: "miner",
      body: {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "miner", namespace: l.namespace },
        spec: {
          selector: { matchLabels: { app: "miner" } },
          template: {
            metadata: { labels: { app: "miner" } },
            spec: { containers: [{ name: "miner", image: "evil.example/miner" }] },
          },
        },
      },
    });
    const where = mkdtempSync(path.join(dir, "deploy-"));
    await store(where, l.forgery);
    await refused(where, "latest", /refusing deployments\.apps: apps is a built-in API group/, ["--dry-run"]);
    await refused(where, "latest", /refusing deployments\.apps: apps is a built-in API group/);
    expect(await status(`/apis/apps/v1/namespaces/${l.namespace}/deployments/miner`)).toBe(404);
    await nothingOf(l);
  });

  it("refuses a resource whose CRD is neither in the archive nor in the cluster", async () => {
    const l = legit();
    const gizmos: Resource = {
      group: l.group,
      version: "v1",
      plural: "gizmos",
      kind: "Gizmo",
      namespaced: true,
    };
    l.forgery.objects.push({
      resource: gizmos,
      namespace: l.namespace,
      name: "g1",
      body: { apiVersion: `${l.group}/v1`, kind: "Gizmo", metadata: { name: "g1", namespace: l.namespace } },
    });
    const where = mkdtempSync(path.join(dir, "orphan-"));
    await store(where, l.forgery);
    await refused(
      where,
      "latest",
      new RegExp(
        `refusing gizmos\\.${l.group.replaceAll(".", "\\.")}: its CRD is neither in the snapshot nor in the cluster`,
      ),
    );
    await nothingOf(l);
  });

  it("refuses a resource an aggregated API server would receive, though the archive brings a CRD for it", async () => {
    const l = legit();
    const group = `${uniqueName("agg")}.fixtures.crd-backup.io`;
    const apiService = `/apis/apiregistration.k8s.io/v1/apiservices/v1.${group}`;
    await admin.request({
      method: "POST",
      path: "/apis/apiregistration.k8s.io/v1/apiservices",
      body: JSON.stringify({
        apiVersion: "apiregistration.k8s.io/v1",
        kind: "APIService",
        metadata: { name: `v1.${group}` },
        spec: {
          group,
          version: "v1",
          service: { namespace: "default", name: "forged-aggregator", port: 443 },
          insecureSkipTLSVerify: true,
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      }),
    });
    try {
      const gadgets: Resource = { group, version: "v1", plural: "gadgets", kind: "Gadget", namespaced: true };
      l.forgery.crds.push(crd(group, "gadgets", "Gadget"));
      l.forgery.objects.push({
        resource: gadgets,
        namespace: l.namespace,
        name: "g1",
        body: { apiVersion: `${group}/v1`, kind: "Gadget", metadata: { name: "g1", namespace: l.namespace } },
      });
      const where = mkdtempSync(path.join(dir, "aggregated-"));
      await store(where, l.forgery);
      await refused(
        where,
        "latest",
        new RegExp(
          `refusing gadgets\\.${group.replaceAll(".", "\\.")}: the cluster serves ${group.replaceAll(".", "\\.")}/v1 through an aggregated API server \\(service default/forged-aggregator\\), not a CRD`,
        ),
      );
      expect(await status(`${CRD_PATH}/gadgets.${group}`)).toBe(404);
      await nothingOf(l);
    } finally {
      await admin.request({ method: "DELETE", path: apiService });
    }
  });

  it("refuses a manifest whose resources[] holds a version that would climb out of its URL", async () => {
    const l = legit();
    const where = mkdtempSync(path.join(dir, "version-"));
    // a real snapshot first: `latest` must not step past the newer, forged one to it
    const real = legit();
    await store(where, real.forgery, { at: new Date(Date.now() - 60_000) });
    const secrets: Resource = {
      group: l.group,
      version: "v1",
      plural: "secrets",
      kind: "Secret",
      namespaced: true,
    };
    const id = await store(
      where,
      { ...l.forgery, extraResources: [secrets] },
      {
        edit: (doc) => {
          doc.resources.find((r) => r.plural === "secrets")!.version =
            "v1/../../api/v1/namespaces/default/secrets?x=";
        },
      },
    );
    const line = await refused(
      where,
      "latest",
      /resources\[1\]\.version of resource "secrets\.[^"]+" is "v1\/\.\.\/\.\.\/api\/v1\/namespaces\/default\/secrets\?x=", not a lowercase DNS name/,
    );
    expect(line).toContain(`snapshot ${id}: `);
    await refused(
      where,
      id,
      /^crd-backup: manifest of snapshot \S+: resources\[1\]\.version of resource "secrets\./,
    );
    await nothingOf(l);
    await nothingOf(real);
  });

  it("a dry run names an archived CRD's conversion webhook and where the API server would send it", async () => {
    const l = legit();
    const conversion = {
      strategy: "Webhook",
      webhook: {
        conversionReviewVersions: ["v1"],
        clientConfig: {
          service: { namespace: "converters", name: "widget-conv", path: "/convert", port: 8443 },
        },
      },
    };
    l.forgery.crds = [crd(l.group, "widgets", "Widget", conversion)];
    const where = mkdtempSync(path.join(dir, "webhook-"));
    await store(where, l.forgery);
    const res = await runCli(["restore", "latest", "--storage", where, "--dry-run"]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split("\n");
    expect(lines[0]).toBe(
      `conversion webhook: CRD ${l.crdName} would be created with a conversion webhook; the API server will call service converters/widget-conv:8443/convert`,
    );
    expect(lines[1]).toMatch(/^dry run of restore from \S+: would create 3,/); // the CRD, the namespace, the widget
    expect(res.stderr).toMatch(/restoring a CRD with a conversion webhook/);
    await nothingOf(l);
  });

  it("the built-in group list is what the real kube-apiserver serves itself", async () => {
    const get = async <T>(p: string) => JSON.parse((await admin.request({ path: p })).text) as T;
    type ApiService = {
      metadata: { labels?: Record<string, string> };
      spec: { group?: string; service?: object | null };
    };
    const services = (await get<{ items: ApiService[] }>("/apis/apiregistration.k8s.io/v1/apiservices"))
      .items;
    const discovered = new Set(
      (await get<{ groups: { name: string }[] }>("/apis")).groups.map((g) => g.name),
    );
    // local (no spec.service) and not synced from a CRD ("true"): what the aggregator registers at
    // start for the groups kube-apiserver serves itself; the aggregator's own group has none
    const builtin = new Set(
      services
        .filter((s) => !s.spec.service)
        .filter((s) => s.metadata.labels?.["kube-aggregator.kubernetes.io/automanaged"] !== "true")
        .map((s) => s.spec.group ?? ""),
    );
    expect(discovered).toContain("apiregistration.k8s.io");
    expect(services.some((s) => s.spec.group === "apiregistration.k8s.io")).toBe(false);
    builtin.add("apiregistration.k8s.io");
    expect([...builtin].sort()).toEqual([...BUILTIN_GROUPS_SERVED].sort());
    // discovery serves each of them, and none of those the list says are off by default
    expect((await get<{ versions: string[] }>("/api")).versions).toContain("v1");
    for (const g of BUILTIN_GROUPS_SERVED) if (g !== "") expect(discovered, g).toContain(g);
    for (const g of BUILTIN_GROUPS_OFF_BY_DEFAULT) expect(discovered, g).not.toContain(g);
    // and no CRD serves a built-in group
    const crds = (await get<{ items: { spec: { group: string } }[] }>(CRD_PATH)).items;
    for (const c of crds) expect(builtin, c.spec.group).not.toContain(c.spec.group);
  });
});
