import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { KubeClient } from "../../src/kube/client.ts";
import type { PolicyRule } from "../../src/rbac/role.ts";
import { kubeconfigForIdentity } from "../env/identity.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, testEnv, uniqueName } from "../support/cluster.ts";
import {
  allRecords,
  createRaw,
  makeCrd,
  objPath,
  readJournal,
  spoolDir,
  startRecorder,
} from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

// The recorder as it runs in a cluster: deploy/'s Deployment and role, and `crd-backup rbac --record`.

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are free-form
type Manifest = Record<string, any>;

const read = (file: string): Manifest[] =>
  parseAllDocuments(readFileSync(new URL(`../../deploy/${file}`, import.meta.url), "utf8")).map(
    (d) => d.toJS() as Manifest,
  );

/** Whether `role` allows every verb `rule` asks for, on its groups and resources. */
function covers(role: PolicyRule[], rule: PolicyRule): boolean {
  return rule.apiGroups.every((g) =>
    rule.resources.every((r) =>
      rule.verbs.every((v) =>
        role.some(
          (x) =>
            (x.apiGroups.includes(g) || x.apiGroups.includes("*")) &&
            (x.resources.includes(r) || x.resources.includes("*")) &&
            x.verbs.includes(v) &&
            !x.resourceNames,
        ),
      ),
    ),
  );
}

describe("the recorder in a cluster", () => {
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(() => admin.close());

  const [deployment] = read("recorder-deployment.yaml");
  const [sa, role, binding] = read("recorder-rbac.yaml");

  it("is one replica, replaced by Recreate, as its own ServiceAccount, bound to a role that only lists, watches and gets namespaces", () => {
    expect(deployment!["spec"]).toMatchObject({ replicas: 1, strategy: { type: "Recreate" } });
    const pod = deployment!["spec"]["template"]["spec"];
    expect(pod.serviceAccountName).toBe(sa!["metadata"]["name"]);
    expect(pod.containers[0].args[0]).toBe("record");
    expect(pod.containers[0].args).toContain("--spool-dir=/var/lib/crd-backup/spool");
    expect(pod.volumes.find((v: Manifest) => v["name"] === "spool")).toBeDefined();
    expect(binding!["roleRef"]["name"]).toBe(role!["metadata"]["name"]);
    expect(binding!["subjects"]).toEqual([
      { kind: "ServiceAccount", name: sa!["metadata"]["name"], namespace: "crd-backup" },
    ]);
    const verbs = new Set((role!["rules"] as PolicyRule[]).flatMap((r) => r.verbs));
    expect([...verbs].sort()).toEqual(["get", "list", "watch"]);
  });

  it("its pod passes the restricted Pod Security Standard", async () => {
    const ns = uniqueName("recdeploy");
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
      }),
    });
    await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/serviceaccounts`,
      body: JSON.stringify({ ...sa, metadata: { ...sa!["metadata"], namespace: ns } }),
    });
    for (const m of [role!, binding!]) {
      await admin.request({
        method: "POST",
        path: `/apis/rbac.authorization.k8s.io/v1/${m["kind"] === "ClusterRole" ? "clusterroles" : "clusterrolebindings"}`,
        query: { dryRun: "All", fieldValidation: "Strict" },
        body: JSON.stringify(m),
      });
    }
    await admin.request({
      method: "POST",
      path: `/apis/apps/v1/namespaces/${ns}/deployments`,
      query: { dryRun: "All", fieldValidation: "Strict" },
      body: JSON.stringify({ ...deployment, metadata: { ...deployment!["metadata"], namespace: ns } }),
    });
    const template = deployment!["spec"]["template"];
    await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/pods`,
      query: { dryRun: "All" },
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "recorder", labels: template.metadata.labels },
        spec: template.spec,
      }),
    });
  });

  it("records as an identity holding only `crd-backup rbac --record`'s role, whose CRD and namespace rules are deploy/'s shipped role", async () => {
    const group = `${uniqueName("recrbac")}.fixtures.crd-backup.io`;
    const ns = uniqueName("recrbac");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const out = await runCli(["rbac", "--record", "--include-groups", group, "-o", "json"]);
    expect(out.code, out.stderr).toBe(0);
    const generated = JSON.parse(out.stdout) as { metadata: { name: string }; rules: PolicyRule[] };
    expect(generated.metadata.name).toBe("crd-backup-record");
    // deploy/'s role is the generated one less its resources: the README's overlay patches them in
    const shipped = role!["rules"] as PolicyRule[];
    expect(generated.rules.filter((r) => !r.apiGroups.includes(group))).toEqual(shipped);
    const resources = generated.rules.filter((r) => r.apiGroups.includes(group));
    expect(resources).toEqual([{ apiGroups: [group], resources: ["widgets"], verbs: ["list", "watch"] }]);
    for (const rule of resources) expect(covers(shipped, rule), JSON.stringify(rule)).toBe(false);
    expect(generated.rules.flatMap((r) => r.verbs).every((v) => ["get", "list", "watch"].includes(v))).toBe(
      true,
    );

    const kubeconfig = await kubeconfigForIdentity(testEnv(), admin, uniqueName("recorder"), generated.rules);
    const storage = freshLocal();
    const rec = startRecorder(
      [
        "--storage",
        storage.location.replace(/^file:\/\//, ""),
        "--include-groups",
        group,
        "--spool-dir",
        spoolDir(),
        "--flush-interval",
        "1s",
      ],
      { KUBECONFIG: kubeconfig },
    );
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await createRaw(
        admin,
        objPath(group, "widgets", ns),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w" } }),
      );
      await sleep(1_000);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
    expect(rec.lines.filter((l) => l.level === "warn" && l.msg === "watch failed, retrying")).toEqual([]);
    const records = allRecords([...(await readJournal(storage)).values()][0]!);
    expect(records.some((r) => r.op === "put" && r.kind === "object" && r.name === "w")).toBe(true);
  });
});
