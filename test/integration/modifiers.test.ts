import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, afterAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { ModifierTestResult } from "../../src/modifiers/test-run.ts";
import type { ReportEntry, RestoreReportDocument } from "../../src/restore/report.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createCrd, uniqueName, waitForCrdEstablished } from "../support/cluster.ts";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const GROUP = `${uniqueName("mod")}.example.com`;
const SRC = uniqueName("mod-src");
/** Velero's examples name these namespaces; objects in them are of this test's own group. */
const VELERO_NAMESPACES = ["bar", "foo", "ns1"];
const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-modifiers-"));
const storage = path.join(dir, "store");

const preserve = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
function crd(plural: string, kind: string, spec: object, status = false): object {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          ...(status ? { subresources: { status: {} } } : {}),
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: { spec, ...(status ? { status: preserve } : {}) },
            },
          },
        },
      ],
    },
  };
}

const CRDS = [
  crd("persistentvolumeclaims", "PersistentVolumeClaim", preserve),
  crd("deployments", "Deployment", preserve),
  crd("pods", "Pod", {
    type: "object",
    "x-kubernetes-preserve-unknown-fields": true,
    properties: {
      // as the core Pod's patchMergeKey: containers merge by name
      containers: {
        type: "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        items: {
          type: "object",
          required: ["name"],
          properties: { name: { type: "string" }, image: { type: "string" } },
          "x-kubernetes-preserve-unknown-fields": true,
        },
      },
    },
  }),
  crd(
    "gateways",
    "Gateway",
    {
      type: "object",
      properties: {
        host: { type: "string" },
        replicas: { type: "integer" },
        issuerRef: { type: "object", properties: { name: { type: "string" }, kind: { type: "string" } } },
        servers: {
          type: "array",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["port", "protocol"],
          items: {
            type: "object",
            required: ["port", "protocol"],
            properties: {
              port: { type: "integer" },
              protocol: { type: "string" },
              hosts: { type: "array", "x-kubernetes-list-type": "set", items: { type: "string" } },
              tls: { type: "object", properties: { mode: { type: "string" } } },
            },
          },
        },
      },
    },
    true,
  ),
  crd("backups", "Backup", preserve),
];

const obj = (plural: string, kind: string, ns: string, name: string, rest: Obj): Obj => ({
  apiVersion: `${GROUP}/v1`,
  kind,
  metadata: { name, namespace: ns, ...(rest["metadata"] ?? {}) },
  ...Object.fromEntries(Object.entries(rest).filter(([k]) => k !== "metadata")),
  _plural: plural,
});

const OBJECTS: Obj[] = [
  obj("persistentvolumeclaims", "PersistentVolumeClaim", "bar", "mysql-data", {
    metadata: { labels: { foo: "bar", test: "yes" } },
    spec: { storageClassName: "standard", resources: { requests: { storage: "1Gi" } } },
  }),
  obj("persistentvolumeclaims", "PersistentVolumeClaim", "bar", "mysql-nolabel", {
    metadata: { labels: { test: "yes" } },
    spec: { storageClassName: "standard" },
  }),
  obj("persistentvolumeclaims", "PersistentVolumeClaim", "foo", "pg-premium", {
    spec: { storageClassName: "premium" },
  }),
  obj("persistentvolumeclaims", "PersistentVolumeClaim", "foo", "pg-gold", {
    spec: { storageClassName: "gold" },
  }),
  obj("deployments", "Deployment", "bar", "test-web", {
    spec: { template: { spec: { containers: [{ name: "app", image: "app:1" }] } } },
  }),
  obj("deployments", "Deployment", "ns1", "test-nginx", {
    metadata: { annotations: { foo: "x", keep: "y" } },
    spec: { template: { spec: { containers: [{ name: "web", image: "nginx" }] } } },
  }),
  obj("deployments", "Deployment", "ns1", "test-busybox", {
    metadata: { annotations: { foo: "x" } },
    spec: { template: { spec: { containers: [{ name: "web", image: "busybox" }] } } },
  }),
  obj("pods", "Pod", "ns1", "my-pod", {
    metadata: { annotations: { foo: "a", bar: "b" } },
    spec: {
      containers: [
        { name: "nginx", image: "repo1/nginx" },
        { name: "sidecar", image: "busybox" },
      ],
    },
  }),
  obj("pods", "Pod", "ns1", "other-pod", {
    metadata: { annotations: { foo: "a" } },
    spec: { containers: [{ name: "nginx", image: "repo1/nginx" }] },
  }),
  obj("gateways", "Gateway", SRC, "web-1", {
    metadata: { labels: { app: "web", tier: "front" } },
    spec: {
      host: "shop.old.example.com",
      replicas: 2,
      issuerRef: { name: "letsencrypt-staging", kind: "ClusterIssuer" },
      servers: [
        { port: 80, protocol: "HTTP", hosts: ["a.old.example.com"] },
        { port: 443, protocol: "HTTPS", hosts: ["b.old.example.com"] },
      ],
    },
    status: { phase: "Ready" },
  }),
  obj("gateways", "Gateway", SRC, "web-2", {
    metadata: { labels: { app: "web", tier: "back" } },
    spec: {
      host: "api.old.example.com",
      issuerRef: { name: "letsencrypt-staging", kind: "ClusterIssuer" },
      servers: [{ port: 8080, protocol: "HTTP", hosts: ["c.old.example.com"] }],
    },
  }),
  obj("gateways", "Gateway", SRC, "api-1", {
    metadata: { labels: { app: "api" } },
    spec: { host: "api.example.com", issuerRef: { name: "x", kind: "Issuer" } },
  }),
  obj("backups", "Backup", SRC, "nightly-1", { spec: { schedule: "@daily" } }),
  obj("backups", "Backup", SRC, "nightly-2", { spec: { schedule: "@daily" } }),
];

let admin: KubeClient;
let snapshotId: string;

async function createNamespace(name: string): Promise<void> {
  try {
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }),
    });
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 409)) throw e;
  }
}

async function get(plural: string, ns: string, name: string): Promise<Obj | undefined> {
  try {
    const res = await admin.request({ path: `/apis/${GROUP}/v1/namespaces/${ns}/${plural}/${name}` });
    return JSON.parse(res.text) as Obj;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return undefined;
    throw e;
  }
}

async function list(plural: string, ns: string): Promise<string[]> {
  const res = await admin.request({ path: `/apis/${GROUP}/v1/namespaces/${ns}/${plural}` });
  return (JSON.parse(res.text) as { items: Obj[] }).items.map((i) => i["metadata"]["name"] as string).sort();
}

function rulesFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Restores the snapshot with the rules into fresh namespaces; returns the report and where each source namespace went. */
async function restoreWith(files: string[], extra: string[] = [], expectCode = 0) {
  const map = Object.fromEntries([...VELERO_NAMESPACES, SRC].map((ns) => [ns, uniqueName("mod-to")]));
  const res = await runCli([
    "restore",
    snapshotId,
    "--storage",
    storage,
    ...Object.entries(map).flatMap(([from, to]) => ["--namespace-map", `${from}=${to}`]),
    ...files.flatMap((f) => ["--resource-modifiers", f]),
    ...extra,
    "--log-level",
    "warn",
    "-o",
    "json",
  ]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(expectCode);
  const report = JSON.parse(res.stdout) as RestoreReportDocument;
  const entry = (resource: string, name: string): ReportEntry =>
    report.entries.find((e) => e.resource === `${resource}.${GROUP}` && e.name === name)!;
  return { report, map, entry };
}

/**
 * Velero's documentation examples (docs "Restore Resource Modifiers", v1.13 on), verbatim but for
 * `groupResource`: they name core resources (persistentvolumeclaims, pods, deployments.apps),
 * which here are custom resources of the same shape in this test's own group.
 */
const velero = (text: string) =>
  text.replace(/groupResource: (\S+)/g, (_m, gr: string) => `groupResource: ${gr.split(".")[0]}.${GROUP}`);

const VELERO_TEMPLATE = `version: v1
resourceModifierRules:
- conditions:
     groupResource: persistentvolumeclaims
     resourceNameRegex: "^mysql.*$"
     namespaces:
     - bar
     - foo
     labelSelector:
        matchLabels:
           foo: bar
  patches:
  - operation: replace
    path: "/spec/storageClassName"
    value: "premium"
  - operation: remove
    path: "/metadata/labels/test"
`;

const VELERO_TEST_OP = `version: v1
resourceModifierRules:
- conditions:
    groupResource: persistentvolumeclaims.storage.k8s.io
    resourceNameRegex: ".*"
    namespaces:
    - bar
    - foo
  patches:
  - operation: test
    path: "/spec/storageClassName"
    value: "premium"
  - operation: replace
    path: "/spec/storageClassName"
    value: "standard"
`;

const VELERO_OTHER = `version: v1
resourceModifierRules:
- conditions:
    groupResource: deployments.apps
    resourceNameRegex: "^test-.*$"
    namespaces:
    - bar
    - foo
  patches:
    # Dealing with complex values by escaping the yaml
  - operation: add
    path: "/spec/template/spec/containers/0"
    value: "{\\"name\\": \\"nginx\\", \\"image\\": \\"nginx:1.14.2\\", \\"ports\\": [{\\"containerPort\\": 80}]}"
    # Copy Operator
  - operation: copy
    from: "/spec/template/spec/containers/0"
    path: "/spec/template/spec/containers/1"
`;

const VELERO_MERGE = `version: v1
resourceModifierRules:
- conditions:
    groupResource: pods
    namespaces:
    - ns1
  mergePatches:
  - patchData: |
      {
        "metadata": {
          "annotations": {
            "foo": null
          }
        }
      }
`;

const VELERO_STRATEGIC = `version: v1
resourceModifierRules:
- conditions:
    groupResource: pods
    resourceNameRegex: "^my-pod$"
    namespaces:
    - ns1
  strategicPatches:
  - patchData: |
      {
        "spec": {
          "containers": [
            {
              "name": "nginx",
              "image": "repo2/nginx"
            }
          ]
        }
      }
`;

const VELERO_MATCHES = `version: v1
resourceModifierRules:
- conditions:
    groupResource: deployments.apps
    resourceNameRegex: "^test-.*$"
    namespaces:
      - ns1
    matches:
    - path: "/spec/template/spec/containers/0/image"
      value: "nginx"
  mergePatches:
  - patchData: |
      {
        "metadata": {
          "annotations": {
            "foo": null
          }
        }
      }
`;

/** crd-backup's extensions and every condition and patch kind, on a CRD with nested list-type map and set lists. */
const EXTENDED = (targetOfSrc: string) => `version: crd-backup.io/v1
resourceModifierRules:
# 0: strategic merge on a list-type map list, where every condition holds
- conditions:
    groupResource: gateways.${GROUP}
    resourceNameRegex: "^web-"
    namespaces: [${SRC}]
    labelSelector:
      matchLabels: {app: web}
      matchExpressions:
      - {key: tier, operator: In, values: [front]}
    matches:
    - {path: /spec/servers/0/port, value: "80"}
  strategicPatches:
  - patchData: |
      spec:
        servers:
        - port: 443
          protocol: HTTPS
          tls: {mode: SIMPLE}
          hosts: [b2.old.example.com]
# 1: change the issuer reference across all gateways
- conditions:
    groupResource: "gateways.*.example.com"
    labelSelector:
      matchExpressions:
      - {key: app, operator: Exists}
    matches:
    - {path: /spec/issuerRef/kind, value: ClusterIssuer}
  patches:
  - {operation: replace, path: /spec/issuerRef/name, value: letsencrypt-prod}
# 2: a domain replaced in every string under spec
- conditions:
    groupResource: gateways.${GROUP}
  replaceRegex:
  - paths: ["/spec/**"]
    pattern: '\\.old\\.example\\.com$'
    replacement: .new.example.com
# 3: backups are not restored at all
- conditions:
    groupResource: backups.${GROUP}
  drop: true
# 4: a test that does not hold: the object is not restored, and the report says which rule
- conditions:
    groupResource: gateways.${GROUP}
    resourceNameRegex: "^api-"
  patches:
  - {operation: test, path: /spec/host, value: something-else.example.com}
  - {operation: replace, path: /spec/host, value: never.example.com}
# 5: conditions see the namespace as stored: the mapped one matches nothing
- conditions:
    groupResource: gateways.${GROUP}
    namespaces: [${targetOfSrc}]
  mergePatches:
  - patchData: '{"metadata": {"labels": {"mapped": "yes"}}}'
`;

beforeAll(async () => {
  admin = await adminClient();
  for (const c of CRDS) await createCrd(admin, c);
  for (const c of CRDS) await waitForCrdEstablished(admin, (c as Obj)["metadata"]["name"]);
  for (const ns of [...VELERO_NAMESPACES, SRC]) await createNamespace(ns);
  for (const o of OBJECTS) {
    const { _plural: plural, status, ...body } = o;
    const ns = body["metadata"]["namespace"] as string;
    const base = `/apis/${GROUP}/v1/namespaces/${ns}/${plural}`;
    await admin.request({ method: "POST", path: base, body: JSON.stringify(body) });
    if (status) {
      const live = JSON.parse(
        (await admin.request({ path: `${base}/${body["metadata"]["name"]}` })).text,
      ) as Obj;
      await admin.request({
        method: "PUT",
        path: `${base}/${body["metadata"]["name"]}/status`,
        body: JSON.stringify({ ...live, status }),
      });
    }
  }
  const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", GROUP, "-o", "json"]);
  expect(snap.code).toBe(0);
  snapshotId = (JSON.parse(snap.stdout) as { id: string }).id;
});
afterAll(() => admin?.close());

describe("resource modifiers: Velero's documented examples on custom resources", () => {
  it("the YAML template: storageClassName premium and label test removed on mysql* PVCs labelled foo=bar in bar/foo", async () => {
    const { map, entry } = await restoreWith([rulesFile("template.yaml", velero(VELERO_TEMPLATE))]);
    const data = await get("persistentvolumeclaims", map["bar"]!, "mysql-data");
    expect(data!["spec"]["storageClassName"]).toBe("premium");
    expect(data!["metadata"]["labels"]).toEqual({ foo: "bar" });
    expect(data!["metadata"]["namespace"]).toBe(map["bar"]); // conditions named bar; it landed in the mapped one
    expect(entry("persistentvolumeclaims", "mysql-data").modifiers).toEqual({
      rules: [0],
      diff: [
        { path: ".metadata.labels.test", op: "removed" },
        { path: ".spec.storageClassName", op: "changed" },
      ],
    });
    const nolabel = await get("persistentvolumeclaims", map["bar"]!, "mysql-nolabel");
    expect(nolabel!["spec"]["storageClassName"]).toBe("standard");
    expect(nolabel!["metadata"]["labels"]).toEqual({ test: "yes" });
    expect(
      (await get("persistentvolumeclaims", map["foo"]!, "pg-premium"))!["spec"]["storageClassName"],
    ).toBe("premium");
  });

  it("the conditional test operation: premium becomes standard; other classes are restored unchanged, as Velero documents", async () => {
    const { map, entry } = await restoreWith([rulesFile("test-op.yaml", velero(VELERO_TEST_OP))]);
    expect(
      (await get("persistentvolumeclaims", map["foo"]!, "pg-premium"))!["spec"]["storageClassName"],
    ).toBe("standard");
    expect((await get("persistentvolumeclaims", map["foo"]!, "pg-gold"))!["spec"]["storageClassName"]).toBe(
      "gold",
    );
    expect(entry("persistentvolumeclaims", "pg-gold")).toMatchObject({
      outcome: "created",
      modifiers: { rules: [], skipped: [0], diff: [] },
    });
    expect(
      (await get("persistentvolumeclaims", map["bar"]!, "mysql-data"))!["spec"]["storageClassName"],
    ).toBe("standard");
  });

  it("the other examples: an escaped JSON value added at a list index, then copied", async () => {
    const { map } = await restoreWith([rulesFile("other.yaml", velero(VELERO_OTHER))]);
    const d = await get("deployments", map["bar"]!, "test-web");
    const nginx = { name: "nginx", image: "nginx:1.14.2", ports: [{ containerPort: 80 }] };
    expect(d!["spec"]["template"]["spec"]["containers"]).toEqual([
      nginx,
      nginx,
      { name: "app", image: "app:1" },
    ]);
    // ns1 is not in the rule's namespaces
    const n = await get("deployments", map["ns1"]!, "test-nginx");
    expect(n!["spec"]["template"]["spec"]["containers"]).toHaveLength(1);
  });

  it("JSON merge patch: annotation foo removed from the pods of ns1, other annotations kept", async () => {
    const { map } = await restoreWith([rulesFile("merge.yaml", velero(VELERO_MERGE))]);
    expect((await get("pods", map["ns1"]!, "my-pod"))!["metadata"]["annotations"]).toEqual({ bar: "b" });
    expect((await get("pods", map["ns1"]!, "other-pod"))!["metadata"]["annotations"]).toBeUndefined();
  });

  it("strategic merge patch: container nginx of my-pod gets repo2/nginx, the sidecar entry of the list-type map is kept", async () => {
    const { map, entry } = await restoreWith([rulesFile("strategic.yaml", velero(VELERO_STRATEGIC))]);
    expect((await get("pods", map["ns1"]!, "my-pod"))!["spec"]["containers"]).toEqual([
      { name: "nginx", image: "repo2/nginx" },
      { name: "sidecar", image: "busybox" },
    ]);
    expect(entry("pods", "my-pod").modifiers!.diff).toEqual([
      { path: ".spec.containers[0].image", op: "changed" },
    ]);
    expect((await get("pods", map["ns1"]!, "other-pod"))!["spec"]["containers"]).toEqual([
      { name: "nginx", image: "repo1/nginx" },
    ]);
  });

  it("conditional patches in all patch types: matches on the first container's image", async () => {
    const { map } = await restoreWith([rulesFile("matches.yaml", velero(VELERO_MATCHES))]);
    expect((await get("deployments", map["ns1"]!, "test-nginx"))!["metadata"]["annotations"]).toEqual({
      keep: "y",
    });
    expect((await get("deployments", map["ns1"]!, "test-busybox"))!["metadata"]["annotations"]).toEqual({
      foo: "x",
    });
  });
});

describe("resource modifiers: crd-backup's extensions and every patch kind on nested lists", () => {
  it("strategic merge keeps other list entries, issuer changed, domain replaced, a kind dropped, a failing test reported with its rule", async () => {
    const target = uniqueName("mod-to");
    const file = rulesFile("extended.yaml", EXTENDED(target));
    const res = await runCli([
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--namespace-map",
      `${SRC}=${target}`,
      "--include-namespaces",
      SRC,
      "--resource-modifiers",
      file,
      "-o",
      "json",
    ]);
    expect(res.code).toBe(3); // partial: api-1 failed
    const report = JSON.parse(res.stdout) as RestoreReportDocument;
    const entry = (name: string) => report.entries.find((e) => e.name === name)!;

    const web1 = await get("gateways", target, "web-1");
    expect(web1!["spec"]).toEqual({
      host: "shop.new.example.com",
      replicas: 2,
      issuerRef: { name: "letsencrypt-prod", kind: "ClusterIssuer" },
      servers: [
        { port: 80, protocol: "HTTP", hosts: ["a.new.example.com"] },
        {
          port: 443,
          protocol: "HTTPS",
          hosts: ["b.new.example.com", "b2.new.example.com"],
          tls: { mode: "SIMPLE" },
        },
      ],
    });
    expect(web1!["metadata"]["labels"]).toEqual({ app: "web", tier: "front" }); // rule 5 matched nothing
    expect(entry("web-1").modifiers!.rules).toEqual([0, 1, 2]);
    expect(entry("web-1").modifiers!.diff.map((d) => d.path)).toEqual([
      ".spec.host",
      ".spec.issuerRef.name",
      ".spec.servers[0].hosts[0]",
      ".spec.servers[1].hosts", // a list that changed length is one change
      ".spec.servers[1].tls",
    ]);

    const web2 = await get("gateways", target, "web-2");
    expect(entry("web-2").modifiers!.rules).toEqual([1, 2]); // tier back, port 8080: rule 0 does not hold
    expect(web2!["spec"]["servers"]).toEqual([
      { port: 8080, protocol: "HTTP", hosts: ["c.new.example.com"] },
    ]);

    expect(await list("backups", target)).toEqual([]);
    expect(entry("nightly-1")).toMatchObject({
      outcome: "skipped",
      reason: "dropped by resource modifier rule 3",
      modifiers: { droppedBy: 3 },
    });

    expect(await get("gateways", target, "api-1")).toBeUndefined();
    const ruleLine =
      EXTENDED(target)
        .split("\n")
        .findIndex((l) => l.startsWith("# 4")) + 2;
    expect(entry("api-1")).toMatchObject({
      outcome: "failed",
      reason: `rule 4 (${file}:${ruleLine}): test /spec/host: the value differs`,
      modifiers: { failedRule: 4 },
    });
    expect(report.counts).toMatchObject({ created: 3, failed: 1, skipped: 2 }); // the namespace, web-1, web-2
  });

  it("--restore-status: a rule on /status changes the restored status", async () => {
    const file = rulesFile(
      "status.yaml",
      `version: v1
resourceModifierRules:
- conditions: {groupResource: gateways.${GROUP}, resourceNameRegex: "^web-1$"}
  patches:
  - {operation: replace, path: /status/phase, value: Restored}
`,
    );
    const withStatus = await restoreWith(
      [file],
      ["--include-resources", `gateways.${GROUP}`, "--restore-status"],
    );
    expect((await get("gateways", withStatus.map[SRC]!, "web-1"))!["status"]).toEqual({ phase: "Restored" });
    const without = await restoreWith([file], ["--include-resources", `gateways.${GROUP}`]);
    expect((await get("gateways", without.map[SRC]!, "web-1"))!["status"]).toBeUndefined();
  });

  it("--dry-run shows the rules and paths per object, and the server's dry run refuses a patch that breaks the schema", async () => {
    const target = uniqueName("mod-to");
    await createNamespace(target); // so the server can validate the objects
    const file = rulesFile(
      "breaks-schema.yaml",
      `version: v1
resourceModifierRules:
- conditions: {groupResource: gateways.${GROUP}, resourceNameRegex: "^web-1$"}
  patches:
  - {operation: replace, path: /spec/replicas, value: many}
- conditions: {groupResource: gateways.${GROUP}, resourceNameRegex: "^web-2$"}
  patches:
  - {operation: add, path: /spec/replicas, value: "3"}
`,
    );
    const args = [
      "restore",
      snapshotId,
      "--storage",
      storage,
      "--namespace-map",
      `${SRC}=${target}`,
      "--include-resources",
      `gateways.${GROUP}`,
      "--resource-modifiers",
      file,
      "--dry-run",
    ];
    const text = await runCli(args);
    expect(text.code).toBe(3);
    const lines = text.stdout.split("\n");
    expect(lines[0]).toMatch(/^dry run of restore from \S+: would create 2, .* invalid 1$/);
    expect(lines).toContain(`  modified: gateways.${GROUP} ${target}/web-2: rules 1: added .spec.replicas`);
    expect(lines).toContain(`  modified: gateways.${GROUP} ${target}/web-1: rules 0: changed .spec.replicas`);
    expect(text.stdout).toMatch(new RegExp(`failed: gateways.${GROUP} ${target}/web-1: .*spec.replicas`));
    expect(await list("gateways", target)).toEqual([]);
  });

  it("modifiers test prints per object the rules and paths, without a cluster", async () => {
    const file = rulesFile("extended-test.yaml", EXTENDED("elsewhere"));
    const env = { KUBECONFIG: "/nonexistent/kubeconfig" };
    const text = await runCli(["modifiers", "test", file, snapshotId, "--storage", storage], { env });
    expect(text.stderr).toBe("");
    expect(text.code).toBe(3); // a rule failed on api-1
    const lines = text.stdout.split("\n");
    expect(lines[0]).toMatch(
      /^resource modifiers on snapshot \S+: 14 objects, 5 matched, 2 changed, 2 dropped, 1 failed$/,
    );
    expect(lines).toContain(
      `  gateways.${GROUP} ${SRC}/web-2: rules 1, 2: changed .spec.host, changed .spec.issuerRef.name, changed .spec.servers[0].hosts[0]`,
    );
    expect(lines).toContain(`  backups.${GROUP} ${SRC}/nightly-1: rules 3: dropped`);
    const json = await runCli(["modifiers", "test", file, snapshotId, "--storage", storage, "-o", "json"], {
      env,
    });
    const result = JSON.parse(json.stdout) as ModifierTestResult;
    expect(result.counts).toEqual({ objects: 14, matched: 5, changed: 2, dropped: 2, failed: 1 });
    expect(result.entries.find((e) => e.name === "api-1")).toMatchObject({
      outcome: "failed",
      rules: [2, 4],
    });
  });

  it("export writes patched manifests and leaves dropped and failed objects out", async () => {
    const to = path.join(dir, "export");
    const res = await runCli([
      "export",
      snapshotId,
      "--storage",
      storage,
      "--to",
      to,
      "-o",
      "json",
      "--resource-modifiers",
      rulesFile("extended-export.yaml", EXTENDED("elsewhere")),
    ]);
    expect(res.code).toBe(3);
    expect(res.stdout).toContain("resource modifiers: 5 objects matched, 2 dropped, 1 failed (not exported)");
    const web1 = JSON.parse(readFileSync(path.join(to, GROUP, "gateways", SRC, "web-1.json"), "utf8")) as Obj;
    expect(web1["spec"]["host"]).toBe("shop.new.example.com");
    expect(existsSync(path.join(to, GROUP, "backups", SRC, "nightly-1.json"))).toBe(false);
    expect(existsSync(path.join(to, GROUP, "gateways", SRC, "api-1.json"))).toBe(false);
  });
});

describe("resource modifiers in a drill", () => {
  it("the drill restores the patched objects, leaves dropped ones out, and checks against the patched snapshot", async () => {
    const prefix = `${uniqueName("d")}-`;
    const file = rulesFile(
      "drill.yaml",
      `version: crd-backup.io/v1
resourceModifierRules:
- conditions: {groupResource: gateways.${GROUP}}
  replaceRegex:
  - {paths: ["/spec/**"], pattern: '\\.old\\.example\\.com$', replacement: .dr.example.com}
- conditions: {groupResource: backups.${GROUP}}
  drop: true
- conditions: {groupResource: gateways.${GROUP}, resourceNameRegex: "^web-1$"}
  strategicPatches:
  - patchData: '{"spec": {"servers": [{"port": 80, "protocol": "HTTP", "hosts": ["extra.dr.example.com"]}]}}'
`,
    );
    const res = await runCli([
      "drill",
      snapshotId,
      "--storage",
      storage,
      "--namespace-prefix",
      prefix,
      "--include-namespaces",
      SRC,
      "--resource-modifiers",
      file,
      "-o",
      "json",
      "--log-level",
      "warn",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as {
      result: string;
      objects: { expected: number; matched: number };
    };
    expect(report.result).toBe("pass");
    expect(report.objects).toMatchObject({ expected: 3, matched: 3 }); // 3 gateways; the 2 backups were dropped
    const web1 = await get("gateways", `${prefix}${SRC}`, "web-1");
    expect(web1!["spec"]["servers"][0]).toEqual({
      port: 80,
      protocol: "HTTP",
      hosts: ["a.dr.example.com", "extra.dr.example.com"],
    });
    expect(await list("backups", `${prefix}${SRC}`)).toEqual([]);
  });
});

describe("resource modifiers: a malformed file fails first, in one line, before anything is read", () => {
  const BAD: [string, string, RegExp][] = [
    [
      "wrong version",
      "version: v2\nresourceModifierRules: []\n",
      /^crd-backup: \S+bad-version\.yaml:1: unsupported version "v2"/,
    ],
    [
      "unknown key",
      "version: v1\nresourceModifierRules:\n- conditions:\n    groupResource: a.b\n    nameRegex: x\n  patches: [{operation: remove, path: /x}]\n",
      /^crd-backup: \S+bad-key\.yaml:5: rule 0\.conditions: unknown key "nameRegex"/,
    ],
    [
      "bad regex",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b, resourceNameRegex: '(x'}\n  patches: [{operation: remove, path: /x}]\n",
      /^crd-backup: \S+bad-regex\.yaml:3: rule 0\.conditions\.resourceNameRegex: bad regular expression/,
    ],
    [
      "bad JSON pointer",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  patches:\n  - operation: replace\n    path: spec/replicas\n    value: '1'\n",
      /^crd-backup: \S+bad-pointer\.yaml:6: rule 0\.patches\[0\]\.path: "spec\/replicas" is not a JSON pointer/,
    ],
  ];
  // unreachable storage: reading it would fail differently, and slowly
  const nowhere = ["--storage", "s3://crd-backup-nowhere/x", "--s3-endpoint", "http://127.0.0.1:9"];

  it.each(BAD)("%s: exit 2 from restore, drill, export and modifiers test", async (what, text, message) => {
    const name = {
      "wrong version": "bad-version",
      "unknown key": "bad-key",
      "bad regex": "bad-regex",
      "bad JSON pointer": "bad-pointer",
    }[what]!;
    const file = rulesFile(`${name}.yaml`, text);
    const to = path.join(dir, uniqueName("never"));
    for (const args of [
      ["restore", "latest", ...nowhere, "--resource-modifiers", file],
      ["drill", "latest", ...nowhere, "--namespace-prefix", "x-", "--resource-modifiers", file],
      ["export", "latest", ...nowhere, "--to", to, "--resource-modifiers", file],
      ["modifiers", "test", file, "latest", ...nowhere],
    ]) {
      const res = await runCli(args);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr, args.join(" ")).toMatch(message);
      expect(res.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      expect(res.stdout).toBe("");
    }
    expect(existsSync(to)).toBe(false);
  });
});
