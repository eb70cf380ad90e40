/**
 * Restore at the server's pace: the API server's priority and fairness (APF) is the authority on
 * what it takes. A priority level of three seats that rejects instead of queueing makes the real
 * kube-apiserver answer 429 to a restore with default flags; the restore must still write every
 * object, and say that it was throttled.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import { widgetCrd } from "../../fixtures/crds.ts";
import { runCli } from "../support/cli.ts";
import {
  adminClient,
  createCrd,
  createNamespace,
  mapConcurrent,
  testEnv,
  uniqueName,
  waitForCrdEstablished,
} from "../support/cluster.ts";

const OBJECTS = 300;

describe("flow control against priority and fairness", () => {
  it("restores everything with default flags while the server rejects what passes three seats", async () => {
    const admin = await adminClient();
    const group = `${uniqueName("flow")}.example.com`;
    const user = uniqueName("throttled");
    const level = uniqueName("narrow");
    await createCrd(admin, widgetCrd(group));
    await waitForCrdEstablished(admin, `widgets.${group}`);
    const [from, to] = [uniqueName("from"), uniqueName("to")];
    await createNamespace(admin, from);
    await mapConcurrent(
      Array.from({ length: OBJECTS }, (_, i) => i),
      8,
      (i) =>
        admin.request({
          method: "POST",
          path: `/apis/${group}/v1/namespaces/${from}/widgets`,
          // int64 beyond 2^53, written as text so no float ever rounds it
          body: `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w-${i}"},"spec":{"size":"small","counter":${9007199254740993n + BigInt(i)}}}`,
        }),
    );

    // a priority level with three seats, no borrowing, rejecting what does not fit
    await admin.request({
      method: "POST",
      path: "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations",
      body: JSON.stringify({
        apiVersion: "flowcontrol.apiserver.k8s.io/v1",
        kind: "PriorityLevelConfiguration",
        metadata: { name: level },
        spec: {
          type: "Limited",
          limited: {
            nominalConcurrencyShares: 1,
            lendablePercent: 0,
            borrowingLimitPercent: 0,
            limitResponse: { type: "Reject" },
          },
        },
      }),
    });
    await admin.request({
      method: "POST",
      path: "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas",
      body: JSON.stringify({
        apiVersion: "flowcontrol.apiserver.k8s.io/v1",
        kind: "FlowSchema",
        metadata: { name: level },
        spec: {
          priorityLevelConfiguration: { name: level },
          matchingPrecedence: 100,
          rules: [
            {
              subjects: [{ kind: "User", user: { name: user } }],
              resourceRules: [
                { verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"] },
              ],
              nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
            },
          ],
        },
      }),
    });
    await admin.request({
      method: "POST",
      path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
      body: JSON.stringify({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: user },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      }),
    });
    // the admin acts as that user: APF classifies the impersonated user
    const env = testEnv();
    const kc = parse(readFileSync(env.kubeconfig, "utf8")) as { users: { user: Record<string, string> }[] };
    kc.users[0]!.user["as"] = user;
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-flow-"));
    const throttled = path.join(dir, "kubeconfig");
    writeFileSync(throttled, stringify(kc), { mode: 0o600 });

    const storage = path.join(dir, "backups");
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;

    const res = await runCli(
      ["restore", id, "--storage", storage, "--namespace-map", `${from}=${to}`, "-o", "json"],
      { env: { KUBECONFIG: throttled } },
    );
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as { counts: { created: number; failed: number } };
    expect(report.counts.created).toBe(OBJECTS + 1); // the objects and the target namespace
    expect(report.counts.failed).toBe(0);
    const flow = res.stderr
      .split("\n")
      .filter((l) => l.includes("api flow control"))
      .map((l) => JSON.parse(l) as { throttled: number; lowestWindow: number })[0];
    expect(flow, res.stderr).toBeDefined();
    expect(flow!.throttled).toBeGreaterThan(0);
    // it gave way (and may have grown back since: the window's lowest point shows it)
    expect(flow!.lowestWindow).toBeLessThan(10);

    const listed = await admin.request({ path: `/apis/${group}/v1/namespaces/${to}/widgets` });
    const items = (JSON.parse(listed.text) as { items: unknown[] }).items;
    expect(items).toHaveLength(OBJECTS);
    expect(listed.text.includes('"counter":9007199254740993,'), "int64 beyond 2^53 came back exactly").toBe(
      true,
    );
  });
});
