import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { RestoreReportDocument } from "../../src/restore/report.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { kubeProxy, kubeconfigThrough, type FaultProxy, type FaultRule } from "../env/fault-proxy.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";

// Restores through the fault proxy in front of the real kube-apiserver, each into fresh
// namespaces (--namespace-map), compared object by object with the state the snapshot captured.

const RESOURCES: [string, string][] = [
  ["widgets", "v1"],
  ["clusterpolicies", "v1alpha1"],
  ["gadgets", "v2"],
];
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("restore under kube-apiserver faults", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let storage: string;
  let snapshotId: string;
  let before: LiveState;
  let beforeSansStatus: LiveState;
  let proxy: FaultProxy;
  let kubeconfig: string;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("rfault")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("rfault-a"), uniqueName("rfault-b")],
      widgetsPerNamespace: 8,
    });
    storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-rfault-"));
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    snapshotId = (JSON.parse(snap.stdout) as { id: string }).id;
    before = await liveState(admin, fx.group, RESOURCES, { withStatus: true, namespaces: fx.namespaces });
    beforeSansStatus = await liveState(admin, fx.group, RESOURCES, {
      withStatus: false,
      namespaces: fx.namespaces,
    });
    proxy = await kubeProxy(testEnv());
    kubeconfig = kubeconfigThrough(proxy, testEnv());
  });
  afterAll(async () => {
    admin.close();
    await proxy.close();
  });

  /** Restores the snapshot into fresh namespaces through the proxy with `rules` active. */
  async function restoreWith(rules: FaultRule[], extra: string[] = []) {
    proxy.clearRules();
    proxy.clearRequests();
    const handles = rules.map((r) => proxy.add(r));
    const map = new Map(fx.namespaces.map((ns) => [ns, uniqueName("rfault-to")]));
    const reportFile = path.join(storage, `${uniqueName("report")}.json`);
    const res = await runCli(
      [
        "restore",
        snapshotId,
        "--storage",
        storage,
        "--restore-status",
        ...[...map].flatMap(([from, to]) => ["--namespace-map", `${from}=${to}`]),
        "--report",
        reportFile,
        ...extra,
      ],
      { env: { KUBECONFIG: kubeconfig } },
    );
    const targets = [...map.values()];
    const after = await liveState(admin, fx.group, RESOURCES, { withStatus: true, namespaces: targets });
    const afterSansStatus = await liveState(admin, fx.group, RESOURCES, {
      withStatus: false,
      namespaces: targets,
    });
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as RestoreReportDocument;
    return { res, after, afterSansStatus, map, report, handles };
  }

  /** The captured state's forms, moved to the mapped namespaces. */
  function expected(state: LiveState, map: Map<string, string>): Map<string, string> {
    const out = new Map<string, string>();
    for (const [key, form] of state.forms) {
      let k = key;
      let f = form;
      for (const [from, to] of map) {
        k = k.replace(` ${from}/`, ` ${to}/`);
        f = f.replaceAll(`"${from}"`, `"${to}"`);
      }
      out.set(k, f);
    }
    return out;
  }

  /** Exactly the snapshot's objects: none missing, none extra, each equal, owners relinked. */
  function converged(after: LiveState, state: LiveState, map: Map<string, string>): void {
    const want = expected(state, map);
    expect([...after.forms.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [key, form] of want) expect(after.forms.get(key), key).toBe(form);
    for (const [key, refs] of after.owners) {
      for (const [kind, name, uid] of refs) {
        const plural =
          kind === "Widget" ? "widgets" : kind === "ClusterPolicy" ? "clusterpolicies" : "gadgets";
        const ns = kind === "ClusterPolicy" ? "" : key.split(" ")[1]!.split("/")[0];
        expect(uid, `${key} -> ${kind} ${name}`).toBe(after.uids.get(`${plural} ${ns}/${name}`));
      }
    }
  }

  const outcomes = (report: RestoreReportDocument, kind: string) =>
    report.entries.filter((e) => e.kind === kind).map((e) => e.outcome);

  const objects = () => fx.counts.widgets + fx.counts.gadgets;
  /** Every namespaced object created; the cluster-scoped policy is there already, unchanged. */
  const createdAndPolicy = () => [...Array<string>(objects()).fill("created"), "unchanged"];

  it("429 with Retry-After, 500 and 503 on creates and status writes, resets and time-outs on reads: converges exactly", async () => {
    const g = escape(fx.group);
    const { res, after, map, report, handles } = await restoreWith(
      [
        {
          method: "POST",
          path: new RegExp(`^/apis/${g}/v1/namespaces/[^/]+/widgets$`),
          count: { first: 2 },
          fault: { kind: "status", status: 429, retryAfterSeconds: 1 },
        },
        {
          method: "POST",
          path: new RegExp(`^/apis/${g}/v2/namespaces/[^/]+/gadgets$`),
          count: { first: 2 },
          fault: { kind: "status", status: 500 },
        },
        {
          method: "POST",
          path: new RegExp(`^/apis/${g}/`),
          count: { every: 5 },
          fault: { kind: "status", status: 503 },
        },
        {
          method: "PATCH",
          path: new RegExp(`^/apis/${g}/v1/namespaces/[^/]+/widgets/[^/]+/status$`),
          count: { first: 2 },
          fault: { kind: "status", status: 503 },
        },
        {
          method: "GET",
          path: new RegExp(`^/apis/${g}/v1/widgets$`),
          count: { first: 1 },
          fault: { kind: "reset", afterBytes: 50 },
        },
        {
          method: "GET",
          path: new RegExp(`^/apis/${g}/v2/gadgets$`),
          count: { first: 1 },
          fault: { kind: "delay", ms: 2500 },
        },
      ],
      ["--request-timeout", "2"],
    );
    expect(res.code, res.stderr).toBe(0);
    for (const h of handles) expect(h.injected, JSON.stringify(h.rule.fault)).toBeGreaterThanOrEqual(1);
    expect(report.counts).toMatchObject({ failed: 0, conflict: 0 });
    expect(outcomes(report, "object").sort()).toEqual(createdAndPolicy());
    expect(outcomes(report, "namespace")).toEqual(["created", "created"]);
    converged(after, before, map);
  });

  describe("answers lost after the server acted (a reset mid-answer, a time-out) on creates", () => {
    let run: Awaited<ReturnType<typeof restoreWith>>;
    beforeAll(async () => {
      const g = escape(fx.group);
      run = await restoreWith(
        [
          {
            method: "POST",
            path: new RegExp(`^/apis/${g}/v1/namespaces/[^/]+/widgets$`),
            count: { first: 2 },
            fault: { kind: "reset", afterBytes: 20 },
          },
          {
            method: "POST",
            path: new RegExp(`^/apis/${g}/v2/namespaces/[^/]+/gadgets$`),
            count: { first: 1 },
            fault: { kind: "delay", ms: 2500, when: "after" },
          },
        ],
        ["--request-timeout", "2"],
      );
    });

    it("every object is there exactly once, with its spec, metadata and owners", () => {
      expect(run.handles.map((h) => h.injected)).toEqual([2, 1]);
      expect(run.res.code, run.res.stderr).toBe(0);
      converged(run.afterSansStatus, beforeSansStatus, run.map);
    });

    // the retried create finds the object its lost answer made: it is reported created, and its
    // status is written like any other's
    it("and with its status, each reported created", () => {
      converged(run.after, before, run.map);
      expect(outcomes(run.report, "object").sort()).toEqual(createdAndPolicy());
    });
  });
});
