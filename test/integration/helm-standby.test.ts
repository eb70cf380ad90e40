/**
 * The chart's standby (issue 24, item 2): standby.enabled renders a Deployment that runs
 * `crd-backup standby --target-in-cluster` as its own ServiceAccount, whose roles write only the
 * custom resources of the chart's groups (CRDs only with standby.syncCrds) plus its ConfigMap and
 * Lease in the release namespace. Installed on the real API server, the RBAC authorizer grants
 * exactly that, and a standby with that ServiceAccount's token brings a drifted namespace back to
 * the journal's state (an update, a create, a delete), keeps its resume point and lease, and
 * releases the lease on SIGTERM.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import {
  allowedOf,
  BUILT_IN_READS,
  secretReads,
  serviceAccountUser,
  waitAllowed,
} from "../support/access.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { helmTemplate, saKubeconfig, serverSideApply, type Manifest } from "../support/helm.ts";
import { spoolDir, startLongRunning, startRecorder } from "../support/recorder.ts";

const find = (objects: Manifest[], kind: string, name?: string) =>
  objects.filter((m) => m["kind"] === kind && (name === undefined || m["metadata"]["name"] === name));

async function render(values: object): Promise<Manifest[]> {
  const res = await helmTemplate({ values });
  expect(res.code, res.stderr).toBe(0);
  return res.objects;
}

const WRITE = ["get", "list", "create", "patch", "update", "delete"];
/** What every standby ClusterRole holds: a restored object's namespace to get and create, CRDs to read. */
const STANDBY_BASE = [
  { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "create"] },
  { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get", "list"] },
];
const STANDBY_ROLE = [
  { apiGroups: [""], resources: ["configmaps"], verbs: ["create"] },
  {
    apiGroups: [""],
    resources: ["configmaps"],
    resourceNames: ["crd-backup-standby"],
    verbs: ["get", "patch", "update"],
  },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
  {
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    resourceNames: ["crd-backup-standby"],
    verbs: ["get", "update", "delete"],
  },
];

describe("the Helm chart's standby (standby.enabled)", () => {
  it("renders one Recreate Deployment running `standby --target-in-cluster` as its own ServiceAccount, with the standby's values only in its pod", async () => {
    const objects = await render({
      standby: {
        enabled: true,
        poll: "2s",
        cluster: "5f0c",
        credentialsSecret: "s3-read-only",
        identitySecret: { name: "standby-identity", key: "key.txt" },
        extraArgs: ["--concurrency=8"],
      },
      credentials: { existingSecret: "s3-writer" },
      filters: { includeGroups: ["example.com"], excludeNamespaces: ["kube-*"] },
    });
    const deployment = find(objects, "Deployment", "crd-backup-standby")[0]!;
    expect(deployment["spec"]["replicas"]).toBe(1);
    expect(deployment["spec"]["strategy"]).toEqual({ type: "Recreate" });
    const pod = deployment["spec"]["template"]["spec"];
    expect(pod["serviceAccountName"]).toBe("crd-backup-standby");
    expect(pod["automountServiceAccountToken"]).toBe(true);
    const container = pod["containers"][0];
    expect(container["args"]).toEqual([
      "standby",
      "--target-in-cluster",
      "--state-namespace=crd-backup",
      "--poll=2s",
      "--cluster=5f0c",
      "--identity=/etc/crd-backup/standby-identity/key.txt",
      "--metrics-addr=:9464",
      "--include-groups=example.com",
      "--exclude-namespaces=kube-*",
      "--concurrency=8",
    ]);
    // storage from the ConfigMap; its own (read-only) credentials instead of the writers'
    expect(container["envFrom"]).toEqual([
      { configMapRef: { name: "crd-backup" } },
      { secretRef: { name: "s3-read-only" } },
    ]);
    expect(pod["volumes"]).toContainEqual({
      name: "identity",
      secret: { secretName: "standby-identity", defaultMode: 0o440 },
    });
    expect(pod["securityContext"]).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532 });
    expect(container["securityContext"]).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    // the identity and the read-only credentials are nowhere else
    for (const other of objects.filter((m) => m !== deployment))
      expect(JSON.stringify(other), `${other["kind"]}/${other["metadata"]["name"]}`).not.toMatch(
        /standby-identity|s3-read-only/,
      );
    // metrics: a Service for the ServiceMonitor, which it turns on by itself
    const service = find(objects, "Service", "crd-backup-standby-metrics")[0]!;
    expect(service["metadata"]["labels"]["crd-backup.io/metrics"]).toBe("true");
    expect(service["spec"]["selector"]).toMatchObject({ "app.kubernetes.io/component": "standby" });
    const monitored = await render({ standby: { enabled: true }, monitoring: { enabled: true } });
    expect(find(monitored, "ServiceMonitor")).toHaveLength(1);
    // signing: it checks segments against the trusted signers, and never holds the signing key
    const signed = find(
      await render({
        standby: { enabled: true },
        signing: {
          keySecret: { name: "crd-backup-signing", key: "id_ed25519" },
          trustedSignersConfigMap: { name: "crd-backup-signers", key: "allowed_signers" },
        },
      }),
      "Deployment",
      "crd-backup-standby",
    )[0]!;
    expect(signed["spec"]["template"]["spec"]["containers"][0]["args"]).toContain(
      "--trusted-signers=/etc/crd-backup/trusted-signers/allowed_signers",
    );
    expect(JSON.stringify(signed)).not.toMatch(/crd-backup-signing|sign-key/);
    // defaults: no --sync-crds, no identity, the shared credentials
    const plain = find(await render({ standby: { enabled: true } }), "Deployment", "crd-backup-standby")[0]!;
    const plainArgs = plain["spec"]["template"]["spec"]["containers"][0]["args"] as string[];
    expect(plainArgs).toEqual([
      "standby",
      "--target-in-cluster",
      "--state-namespace=crd-backup",
      "--poll=1s",
      "--metrics-addr=:9464",
    ]);
  });

  it("its roles write the chart's groups' resources (CRDs only with syncCrds) and its own ConfigMap and Lease; never with rbac.allGroups", async () => {
    const rules = (objects: Manifest[], kind: string) =>
      find(objects, kind, "crd-backup-standby")[0]!["rules"];
    // offline, no group is known: namespaces and CRDs only
    const offline = await render({ standby: { enabled: true } });
    expect(rules(offline, "ClusterRole")).toEqual(STANDBY_BASE);
    expect(rules(offline, "Role")).toEqual(STANDBY_ROLE);
    expect(find(offline, "Role", "crd-backup-standby")[0]!["metadata"]["namespace"]).toBe("crd-backup");
    for (const kind of ["ClusterRoleBinding", "RoleBinding"])
      expect(find(offline, kind, "crd-backup-standby")[0]!["subjects"]).toEqual([
        { kind: "ServiceAccount", name: "crd-backup-standby", namespace: "crd-backup" },
      ]);
    const groups = ["cert-manager.io", "monitoring.coreos.com"];
    const grouped = await render({ standby: { enabled: true }, rbac: { groups } });
    expect(rules(grouped, "ClusterRole")).toEqual([
      ...STANDBY_BASE,
      { apiGroups: groups, resources: ["*"], verbs: WRITE },
    ]);
    const crds = await render({ standby: { enabled: true, syncCrds: true }, rbac: { groups } });
    expect(rules(crds, "ClusterRole")).toEqual([
      STANDBY_BASE[0],
      { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: WRITE },
      { apiGroups: groups, resources: ["*"], verbs: WRITE },
    ]);
    // its age identity, like the drill's, is refused while a role the chart binds can read Secrets
    const secretReader = JSON.stringify({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }],
    });
    const identity = { enabled: true, identitySecret: { name: "standby-identity", key: "key.txt" } };
    const readable = await helmTemplate({
      values: { standby: identity, rbac: { snapshotRole: secretReader } },
    });
    expect(readable.code).not.toBe(0);
    expect(readable.stderr).toContain(
      "standby.identitySecret: the ClusterRole crd-backup-read can read Secrets (rbac.allGroups, or an rbac.snapshotRole granting them), so its ServiceAccount could read the age identity in standby-identity",
    );
    expect((await helmTemplate({ values: { standby: identity } })).code).toBe(0);
    const wide = await helmTemplate({ values: { standby: { enabled: true }, rbac: { allGroups: true } } });
    expect(wide.code).not.toBe(0);
    expect(wide.stderr).toContain(
      "standby.enabled with rbac.allGroups: the standby writes only the custom resources of named groups",
    );
  });
});

describe("the chart's standby on the real API server", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("hsb")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("hsb-a")],
      widgetsPerNamespace: 3,
    });
  });
  afterAll(() => admin.close());

  it("installed, RBAC grants exactly its writes, and a standby with its token converges a drifted namespace to the journal, keeps its state and releases the lease", async () => {
    const namespace = uniqueName("hsb-inst");
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }),
    });
    const release = uniqueName("crd-backup");
    const rendered = await helmTemplate({
      release,
      namespace,
      kubeconfig: testEnv().kubeconfig, // lookup: the cluster's CRD groups, filtered
      values: { standby: { enabled: true }, filters: { includeGroups: [fx.group] } },
    });
    expect(rendered.code, rendered.stderr).toBe(0);
    for (const m of rendered.objects) await serverSideApply(admin, m, { dryRun: false });
    const sa = `${release}-standby`;
    const who = serviceAccountUser(namespace, sa);
    const widgets = { resource: "widgets", group: fx.group, namespace: fx.namespaces[0]! };
    const own = { namespace, name: "crd-backup-standby" };
    await waitAllowed(admin, who, [
      ...WRITE.map((verb) => ({ verb, ...widgets })),
      { verb: "update", resource: "widgets/status", group: fx.group, namespace: fx.namespaces[0]! },
      { verb: "create", resource: "namespaces" },
      { verb: "get", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
      { verb: "patch", resource: "configmaps", ...own },
      { verb: "update", resource: "leases", group: "coordination.k8s.io", ...own },
      { verb: "delete", resource: "leases", group: "coordination.k8s.io", ...own },
    ]);
    // nothing built in beyond that: no Secret, no other ConfigMap or Lease, no workload, no CRD write
    expect(
      await allowedOf(admin, who, [
        ...secretReads(namespace),
        ...BUILT_IN_READS,
        { verb: "create", resource: "secrets", namespace },
        { verb: "get", resource: "configmaps", namespace, name: release },
        { verb: "patch", resource: "configmaps", namespace: "kube-system", name: "crd-backup-standby" },
        { verb: "create", resource: "configmaps", namespace: "kube-system" },
        { verb: "update", resource: "leases", group: "coordination.k8s.io", namespace, name: "other" },
        { verb: "delete", resource: "namespaces", name: namespace },
        { verb: "update", resource: "namespaces", name: namespace },
        { verb: "create", resource: "pods", namespace },
        { verb: "create", resource: "deployments", group: "apps", namespace },
        { verb: "create", resource: "clusterrolebindings", group: "rbac.authorization.k8s.io" },
        { verb: "delete", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
        { verb: "create", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
        { verb: "delete", resource: "widgets", group: "other.example.com", namespace },
      ]),
    ).toEqual([]);

    // a journal of the group, recorded here; then the cluster drifts from it (a spec changed, an
    // object deleted, one created) while nothing records, so the standby has all three to write
    const storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-hsb-"));
    const rec = startRecorder([
      "--storage",
      storage,
      "--include-groups",
      fx.group,
      "--flush-interval",
      "1s",
      "--spool-dir",
      spoolDir(),
    ]);
    await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
    rec.child.kill("SIGTERM");
    expect((await rec.exited).code, rec.log()).toBe(0);
    const ns = fx.namespaces[0]!;
    const widget = (name = "") => `/apis/${fx.group}/v1/namespaces/${ns}/widgets${name ? `/${name}` : ""}`;
    const replicasOf = async (name: string) =>
      (JSON.parse((await admin.request({ path: widget(name) })).text) as Manifest)["spec"]["replicas"];
    const recorded = await replicasOf("widget-0000");
    await admin.request({
      method: "PATCH",
      path: widget("widget-0000"),
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ spec: { replicas: 42 } }),
    });
    // a gadget: widgets carry a finalizer, and nothing here would remove it
    const gadget = `/apis/${fx.group}/v2/namespaces/${ns}/gadgets/gadget-0000`;
    await admin.request({ method: "DELETE", path: gadget });
    expect(((await admin.request({ path: gadget }).catch((e: unknown) => e)) as KubeApiError).status).toBe(
      404,
    );
    await admin.request({
      method: "POST",
      path: widget(),
      body: JSON.stringify({
        apiVersion: `${fx.group}/v1`,
        kind: "Widget",
        metadata: { name: "drifted" },
        spec: { size: "small" },
      }),
    });

    // the Deployment's container, run as its pod would: its args, with the ServiceAccount's token
    // in place of --target-in-cluster (which needs a pod)
    const deployment = find(rendered.objects, "Deployment", sa)[0]!;
    const kubeconfig = await saKubeconfig(admin, namespace, sa);
    const args = (deployment["spec"]["template"]["spec"]["containers"][0]["args"] as string[])
      .slice(1)
      .map((a) =>
        a === "--target-in-cluster"
          ? `--target-kubeconfig=${kubeconfig}`
          : a.startsWith("--metrics-addr=")
            ? "--metrics-addr=127.0.0.1:0"
            : a,
      );
    const standby = startLongRunning("standby", args, {
      KUBECONFIG: kubeconfig,
      CRD_BACKUP_STORAGE: storage,
    });
    try {
      await standby.waitFor(() => standby.count("standby applied") > 0, "the standby's first step");
      const metrics = await standby.metrics();
      expect(metrics).toMatch(/^crd_backup_standby_applied_until_timestamp_seconds \d/m);
      expect(metrics).toMatch(/^crd_backup_standby_errors_total 0$/m);
      // the recorded state is back: the spec reverted, the deleted object recreated, the new one gone
      expect(await replicasOf("widget-0000")).toBe(recorded);
      await admin.request({ path: gadget });
      const extra = await admin.request({ path: widget("drifted") }).catch((e: unknown) => e);
      expect((extra as KubeApiError).status).toBe(404);
      expect(metrics).toMatch(/^crd_backup_standby_applied_changes_total [3-9]$/m);
      const state = JSON.parse(
        (await admin.request({ path: `/api/v1/namespaces/${namespace}/configmaps/crd-backup-standby` })).text,
      ) as Manifest;
      expect(Object.keys(state["data"]).sort()).toEqual(["appliedAt", "at", "base", "cluster", "segment"]);
      await admin.request({
        path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/crd-backup-standby`,
      });
    } finally {
      standby.child.kill("SIGTERM");
    }
    expect((await standby.exited).code, standby.log()).toBe(0);
    expect(standby.log()).not.toMatch(/forbidden/i);
    // a clean stop released the lease (its delete verb)
    const gone = await admin
      .request({ path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/crd-backup-standby` })
      .catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(KubeApiError);
    expect((gone as KubeApiError).status).toBe(404);
  }, 180_000);
});
