/**
 * `crd-backup standby` end to end (issue 24, item 2): a recorder on cluster A, a standby into a
 * second cluster B (its own kube-apiserver and etcd), reading the journal from MinIO. B equals A
 * after the initial sync and after every change (spec, status, create, delete, a CRD created and
 * one deleted); a second standby on B refuses to start; a standby killed with SIGKILL and
 * restarted resumes from its stored segment: B converges, and objects that did not change keep
 * their resourceVersion (nothing applied twice).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { parseJson, type JsonObject } from "../../src/json/json.ts";
import { startEnvironment, stopEnvironment, type EnvironmentInfo } from "../env/environment.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, clientFor, createNamespace, uniqueName } from "../support/cluster.ts";
import { liveState } from "../support/compare.ts";
import {
  createRaw,
  makeCrd,
  objPath,
  patch,
  spoolDir,
  startLongRunning,
  startRecorder,
  type RunningRecorder,
} from "../support/recorder.ts";
import { freshS3 } from "../support/storage.ts";

const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const KINDS: Record<string, string> = { widgets: "Widget", gadgets: "Gadget", sprockets: "Sprocket" };

async function groupCrds(client: KubeClient, group: string): Promise<string[]> {
  const list = parseJson((await client.request({ path: CRDS })).text) as { items: JsonObject[] };
  return list.items
    .filter((c) => (c["spec"] as JsonObject)["group"] === group)
    .map((c) => String((c["metadata"] as JsonObject)["name"]))
    .sort();
}

/** The group's CRDs and objects (comparable form, with status) in `namespaces`. */
async function state(client: KubeClient, group: string, namespaces: string[]) {
  const crds = await groupCrds(client, group);
  const live = await liveState(
    client,
    group,
    crds.map((c) => [c.split(".")[0]!, "v1"]),
    { withStatus: true, namespaces },
  );
  return { crds, objects: Object.fromEntries([...live.forms].sort()) };
}

/** resourceVersion of every object of the group in `namespaces`, by `plural ns/name`. */
async function versions(
  client: KubeClient,
  group: string,
  namespaces: string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const crd of await groupCrds(client, group)) {
    const plural = crd.split(".")[0]!;
    for (const ns of namespaces) {
      const list = parseJson((await client.request({ path: objPath(group, plural, ns) })).text) as {
        items: JsonObject[];
      };
      for (const o of list.items) {
        const md = o["metadata"] as JsonObject;
        out.set(`${plural} ${ns}/${String(md["name"])}`, String(md["resourceVersion"]));
      }
    }
  }
  return out;
}

describe("standby", () => {
  let admin: KubeClient;
  let target: EnvironmentInfo | undefined;
  let targetAdmin: KubeClient | undefined;
  let targetStarting: Promise<EnvironmentInfo> | undefined;
  const running: RunningRecorder[] = [];

  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(async () => {
    for (const r of running) r.child.kill("SIGKILL");
    admin?.close();
    targetAdmin?.close();
    if (!target && targetStarting) target = await targetStarting.catch(() => undefined);
    if (target) await stopEnvironment(target);
  });

  it("keeps cluster B equal to cluster A as changes land, refuses a second standby, resumes after SIGKILL without re-applying, and retries what B refuses", async () => {
    targetStarting ??= startEnvironment({ log: () => {} });
    const group = `${uniqueName("sb")}.fixtures.crd-backup.io`;
    const [ns1, ns2] = [uniqueName("sb1"), uniqueName("sb2")];
    const mine = [ns1, ns2];
    for (const plural of ["widgets", "gadgets"]) await makeCrd(admin, group, plural, KINDS[plural]!);
    await createNamespace(admin, ns1);
    await createNamespace(admin, ns2);
    const at = (plural: string, ns: string, name?: string) => objPath(group, plural, ns, name);
    const create = (plural: string, ns: string, name: string, spec: object) =>
      createRaw(
        admin,
        at(plural, ns),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: KINDS[plural], metadata: { name }, spec }),
      );
    const status = (plural: string, ns: string, name: string, s: object) =>
      patch(admin, `${at(plural, ns, name)}/status`, { status: s });

    await create("widgets", ns1, "w1", { size: 1 });
    await status("widgets", ns1, "w1", { phase: "Ready" });
    await create("widgets", ns2, "w2", { size: 2 });
    await create("gadgets", ns1, "g1", { n: 1 });
    await create("gadgets", ns2, "keep", { n: 9 }); // never changed: its resourceVersion in B must stay

    const storage = freshS3();
    const rec = startRecorder([
      "--storage",
      storage.location,
      "--include-groups",
      group,
      "--flush-interval",
      "1s",
      "--spool-dir",
      spoolDir(),
    ]);
    running.push(rec);
    await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
    target = await targetStarting;
    targetAdmin = await clientFor(target.kubeconfig);
    const b = targetAdmin;

    const standbyArgs = [
      "--storage",
      storage.location,
      "--target-kubeconfig",
      target.kubeconfig,
      "--include-groups",
      group,
      "--sync-crds",
      "--poll",
      "1s",
      "--lease-duration",
      "4s",
      "--metrics-addr",
      "127.0.0.1:0",
    ];
    const startStandby = () => {
      const s = startLongRunning("standby", standbyArgs);
      running.push(s);
      return s;
    };
    /** Waits until B equals A; returns the seconds it took. */
    const converged = async (what: string, standby: RunningRecorder, ms = 60_000) => {
      const t0 = Date.now();
      let last: unknown;
      while (Date.now() - t0 < ms) {
        const [wantA, gotB] = [await state(admin, group, mine), await state(b, group, mine)];
        if (JSON.stringify(wantA) === JSON.stringify(gotB)) return (Date.now() - t0) / 1000;
        last = { wantA, gotB };
        await sleep(250);
      }
      throw new Error(`${what}: B never equalled A: ${JSON.stringify(last)}\n${standby.log()}`);
    };

    let standby = startStandby();
    await standby.waitFor(() => standby.count("standby applied") > 0, "the initial sync");
    expect(standby.lines.find((l) => l.msg === "standby re-sync")?.["reason"]).toBe(
      "no resume point in the target",
    );
    await converged("initial sync", standby);
    const keepRv = (await versions(b, group, mine)).get(`gadgets ${ns2}/keep`);
    expect(keepRv).toBeDefined();

    // a second standby on the same target refuses to start while the first holds the lease
    const second = await runCli([
      "standby",
      ...standbyArgs.filter((a) => a !== "127.0.0.1:0" && a !== "--metrics-addr"),
    ]);
    expect(second.code, second.stderr).not.toBe(0);
    expect(second.stderr.trim().split("\n")).toHaveLength(1);
    expect(second.stderr).toMatch(/another standby .* holds the lease crd-backup\/crd-backup-standby/);

    // changes on A: spec, status, create, delete, a CRD created with an object
    const t1 = Date.now();
    await patch(admin, at("widgets", ns1, "w1"), { spec: { size: 10 } });
    await status("widgets", ns1, "w1", { phase: "Degraded" });
    await create("widgets", ns2, "w3", { size: 3 });
    await admin.request({ method: "DELETE", path: at("gadgets", ns1, "g1") });
    await makeCrd(admin, group, "sprockets", KINDS["sprockets"]!);
    await rec.waitFor(
      () => rec.lines.some((l) => String(l["resource"]).startsWith(`sprockets.${group}`)),
      "sprockets to be followed",
    );
    await create("sprockets", ns1, "s1", { teeth: 12 });
    const took = await converged("changes", standby);
    console.log(
      `B equalled A ${took} s after the last change (${(Date.now() - t1) / 1000} s after the first)`,
    );
    expect((await versions(b, group, mine)).get(`gadgets ${ns2}/keep`)).toBe(keepRv);
    // following, a step advances the state it holds by the new segments alone (one whose segments
    // hold a re-list, as a new CRD's first listing is, builds it from the base)
    const follows = standby.lines.filter((l) => l.msg === "standby applied" && l["step"] === "follow");
    expect(
      follows.some((l) => l["state"] === "advanced"),
      standby.log(),
    ).toBe(true);

    // SIGKILL mid-run, with changes landing; then a CRD deleted while it is down
    await patch(admin, at("widgets", ns2, "w2"), { spec: { size: 20 } });
    standby.child.kill("SIGKILL");
    await standby.exited;
    const before = await versions(b, group, mine);
    await create("widgets", ns1, "w4", { size: 4 });
    await status("widgets", ns2, "w3", { phase: "Ready" });
    await admin.request({ method: "DELETE", path: `${CRDS}/sprockets.${group}` });
    for (let i = 0; (await groupCrds(admin, group)).includes(`sprockets.${group}`); i++) {
      if (i > 300) throw new Error("sprockets CRD not deleted");
      await sleep(200);
    }
    await sleep(5000); // the killed standby's lease expires (--lease-duration 4s)

    standby = startStandby();
    await standby.waitFor(() => standby.count("standby started") > 0, "the restarted standby");
    const resumed = standby.lines.find((l) => l.msg === "standby started")!;
    expect(String(resumed["resumeAfter"])).toMatch(/^journal\//);
    await converged("after SIGKILL", standby);
    const after = await versions(b, group, mine);
    // objects that did not change on A since the kill kept their resourceVersion in B
    for (const [k, rv] of before) {
      if ([`widgets ${ns2}/w2`, `widgets ${ns2}/w3`].includes(k) || k.startsWith("sprockets ")) continue;
      expect(after.get(k), k).toBe(rv);
    }
    expect(after.get(`gadgets ${ns2}/keep`)).toBe(keepRv);

    // B equals A once the writes are done; the step counts them as it returns
    await standby.waitFor(() => standby.count("standby applied") > 0, "the restarted standby's step");
    const steps = standby.lines.filter((l) => l.msg === "standby applied");
    console.log(`after the restart: ${JSON.stringify(steps)}`);
    expect(standby.count("standby re-sync"), "resumed, not re-synced").toBe(0);
    const metrics = await standby.metrics();
    expect(metrics).toMatch(/^crd_backup_standby_applied_changes_total [1-9]/m);
    expect(metrics).toMatch(/^crd_backup_standby_errors_total 0$/m);
    expect(metrics).toMatch(/^crd_backup_standby_lag_seconds \d/m);

    // a change the target refuses (an admission policy on B): counted, logged by name, retried
    // with backoff, and the other changes land meanwhile; once the policy goes, it lands too
    const policy = uniqueName("sb-deny");
    const vap = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
    const vapBinding = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";
    await b.request({
      method: "POST",
      path: vap,
      body: JSON.stringify({
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingAdmissionPolicy",
        metadata: { name: policy },
        spec: {
          failurePolicy: "Fail",
          matchConstraints: {
            resourceRules: [
              { apiGroups: [group], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["*"] },
            ],
          },
          validations: [
            { expression: "!object.metadata.name.startsWith('refused')", message: "refused by the test" },
          ],
        },
      }),
    });
    await b.request({
      method: "POST",
      path: vapBinding,
      body: JSON.stringify({
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingAdmissionPolicyBinding",
        metadata: { name: policy },
        spec: { policyName: policy, validationActions: ["Deny"] },
      }),
    });
    // the policy is in force once a dry-run create of a refused name fails
    for (let i = 0; ; i++) {
      const probe = JSON.stringify({
        apiVersion: `${group}/v1`,
        kind: "Widget",
        metadata: { name: "refused-probe" },
      });
      const refused = await b
        .request({ method: "POST", path: at("widgets", ns1), query: { dryRun: "All" }, body: probe })
        .then(
          () => false,
          () => true,
        );
      if (refused) break;
      if (i > 100) throw new Error("the admission policy never took effect");
      await sleep(200);
    }
    await create("widgets", ns1, "refused-1", { size: 1 });
    await create("widgets", ns2, "fine-1", { size: 1 });
    await standby.waitFor(
      () => standby.lines.some((l) => l.msg === "target refused an object" && l["name"] === "refused-1"),
      "the refusal to be logged",
    );
    const refusal = standby.lines.find((l) => l.msg === "target refused an object")!;
    expect(refusal).toMatchObject({ resource: `widgets.${group}`, namespace: ns1, outcome: "failed" });
    expect(JSON.stringify(refusal)).not.toContain("size"); // named, never its contents
    for (let i = 0; !(await versions(b, group, mine)).has(`widgets ${ns2}/fine-1`); i++) {
      if (i > 200) throw new Error(`fine-1 never reached B while refused-1 was refused\n${standby.log()}`);
      await sleep(250);
    }
    expect(await standby.metrics()).toMatch(/^crd_backup_standby_errors_total [1-9]/m);
    await b.request({ method: "DELETE", path: `${vapBinding}/${policy}` });
    await b.request({ method: "DELETE", path: `${vap}/${policy}` });
    console.log(
      `converged ${await converged("after the policy went", standby, 120_000)} s after the policy went`,
    );

    standby.child.kill("SIGTERM");
    expect((await standby.exited).code, standby.log()).toBe(0);
    // a clean stop gives the lease up: a replacement starts at once, without waiting for it to expire
    const replacement = startStandby();
    await replacement.waitFor(
      () => replacement.count("standby started") > 0,
      "the replacement to start",
      15_000,
    );
    replacement.child.kill("SIGTERM");
    expect((await replacement.exited).code, replacement.log()).toBe(0);
    rec.child.kill("SIGTERM");
    await rec.exited;
  }, 300_000);
  it("a gap in the journal (the recorder killed and restarted) leads to a re-sync, and B converges", async () => {
    targetStarting ??= startEnvironment({ log: () => {} });
    target ??= await targetStarting;
    targetAdmin ??= await clientFor(target.kubeconfig);
    const b = targetAdmin;
    const group = `${uniqueName("sbgap")}.fixtures.crd-backup.io`;
    const ns = uniqueName("sbgap");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const create = (name: string, size: number) =>
      createRaw(
        admin,
        objPath(group, "widgets", ns),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name }, spec: { size } }),
      );
    for (let i = 0; i < 5; i++) await create(`w${i}`, i);
    const storage = freshS3();
    const spool = spoolDir();
    const recArgs = [
      "--storage",
      storage.location,
      "--include-groups",
      group,
      "--flush-interval",
      "1s",
      "--spool-dir",
      spool,
    ];
    const first = startRecorder(recArgs);
    running.push(first);
    await first.waitFor(() => first.count("following every resource") > 0, "the recorder to follow");
    const standby = startLongRunning("standby", [
      "--storage",
      storage.location,
      "--target-kubeconfig",
      target.kubeconfig,
      "--include-groups",
      group,
      "--poll",
      "1s",
      "--state-namespace",
      uniqueName("sbstate"),
      "--metrics-addr",
      "127.0.0.1:0",
    ]);
    running.push(standby);
    const converged = async (what: string) => {
      for (const t0 = Date.now(); Date.now() - t0 < 60_000; await sleep(250)) {
        const [a, got] = [await state(admin, group, [ns]), await state(b, group, [ns])];
        if (JSON.stringify(a) === JSON.stringify(got)) return;
      }
      throw new Error(`${what}: B never equalled A\n${standby.log()}`);
    };
    await converged("initial sync");

    // the recorder dies; changes meanwhile reach the journal only as a gap and the re-list after it
    first.child.kill("SIGKILL");
    await first.exited;
    await admin.request({ method: "DELETE", path: objPath(group, "widgets", ns, "w1") });
    await patch(admin, objPath(group, "widgets", ns, "w2"), { spec: { size: 22 } });
    await create("w9", 9);
    const second = startRecorder(recArgs);
    running.push(second);
    await second.waitFor(() => second.count("gap recorded") > 0, "the downtime's gap");
    await standby.waitFor(
      () => standby.lines.some((l) => l.msg === "standby re-sync" && l["reason"] === "a gap in the journal"),
      "the re-sync after the gap",
    );
    await converged("after the gap");
    expect(await standby.metrics()).toMatch(/^crd_backup_standby_resyncs_total [2-9]$/m);
    standby.child.kill("SIGTERM");
    expect((await standby.exited).code, standby.log()).toBe(0);
    second.child.kill("SIGTERM");
    await second.exited;
  }, 300_000);
  it("refuses to start without a named target, with two targets, or with a bad --poll: one line, exit 2; --target-in-cluster outside a pod: one line, exit 1", async () => {
    const storage = freshS3();
    const none = await runCli(["standby", "--storage", storage.location]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe(
      "crd-backup: say which cluster the standby writes to: --target-context, --target-kubeconfig or --target-in-cluster",
    );
    // in a pod the target is the pod's own cluster, and nothing else may name one too
    for (const other of [
      ["--target-context", "dr"],
      ["--target-kubeconfig", "/tmp/dr.kubeconfig"],
    ]) {
      const both = await runCli(["standby", "--storage", storage.location, "--target-in-cluster", ...other]);
      expect(both.code, both.stderr).toBe(2);
      expect(both.stderr.trim()).toBe(
        "crd-backup: --target-in-cluster takes the pod's service account: give it without --target-context and --target-kubeconfig",
      );
    }
    // outside a pod it never falls back to a kubeconfig: one line, nothing written
    const laptop = await runCli(["standby", "--storage", storage.location, "--target-in-cluster"]);
    expect(laptop.code, laptop.stderr).toBe(1);
    expect(laptop.stderr.trim()).toBe(
      "crd-backup: not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
    );
    const noToken = await runCli(["standby", "--storage", storage.location, "--target-in-cluster"], {
      env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: "6443" },
    });
    expect(noToken.code, noToken.stderr).toBe(1);
    expect(noToken.stderr.trim()).toMatch(
      /^crd-backup: no service account token at \/var\/run\/secrets\/kubernetes.io\/serviceaccount\/token /,
    );
    const poll = await runCli([
      "standby",
      "--storage",
      storage.location,
      "--target-context",
      "dr",
      "--poll",
      "soon",
    ]);
    expect(poll.code).toBe(2);
    expect(poll.stderr.trim().split("\n")).toHaveLength(1);
    expect(poll.stderr).toMatch(/--poll "soon"/);
  });
});
