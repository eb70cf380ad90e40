/**
 * restore/diff/export/drill --at against the real kube-apiserver and MinIO. The base is a real
 * `crd-backup snapshot`; the journal is written with SegmentBuilder from real changes made to the
 * cluster (each body read back from the API server and cleaned as a snapshot cleans it), at record
 * times of the test's choosing, so the state at each chosen T is known exactly: the live state
 * captured right after the changes up to T.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readManifest } from "../../src/storage/snapshots.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { JournalRecord, RecordKey } from "../../src/journal/segment-format.ts";
import { SegmentBuilder } from "../../src/journal/segment-writer.ts";
import type { HttpMethod, KubeClient } from "../../src/kube/client.ts";
import { collectionPath } from "../../src/kube/discovery.ts";
import { parseJson, stringifyJson, type JsonObject } from "../../src/json/json.ts";
import { cleanObject } from "../../src/objects/clean.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import { startEnvironment, stopEnvironment, type EnvironmentInfo } from "../env/environment.ts";
import { runCli } from "../support/cli.ts";
import {
  adminClient,
  clientFor,
  createCrd,
  createNamespace,
  testEnv,
  uniqueName,
  waitForCrdEstablished,
} from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";

const BIG = "9007199254740993"; // 2^53 + 1: a float64 would round it

function crd(group: string, plural: string, kind: string): object {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  properties: {
                    size: { type: "integer" },
                    big: { type: "integer", format: "int64" },
                    color: { type: "string" },
                  },
                },
                status: { type: "object", properties: { phase: { type: "string" } } },
              },
            },
          },
        },
      ],
    },
  };
}

describe("point in time (--at)", () => {
  let admin: KubeClient;
  let target: EnvironmentInfo;
  let targetAdmin: KubeClient;
  let group: string;
  let nsA: string;
  let nsB: string;
  let nsC: string;
  let storage: S3Backend;
  let location: string;
  let base: string;
  let cluster: string;
  let F: number; // the base's finishedAt, ms
  const records: JournalRecord[] = [];
  /** Expected live state (source cluster) at each chosen T. */
  const expected = new Map<string, LiveState>();
  const T = (s: number) => new Date(F + s * 1000).toISOString();
  /** The resources whose CRD exists at each chosen T (gadgets created after t1, gizmos deleted before t3). */
  const resources = (label: string): [string, string][] =>
    [
      ["widgets", "v1"],
      ...(["base", "t1", "t2"].includes(label) ? [["gizmos", "v1"]] : []),
      ...(["t2", "t3", "t4"].includes(label) ? [["gadgets", "v1"]] : []),
    ] as [string, string][];

  /** The object as the recorder would journal it: read back from the API server, cleaned as a snapshot cleans. */
  async function captured(pathname: string): Promise<{ body: Buffer; uid: string; rv: string }> {
    const obj = parseJson((await admin.request({ path: pathname })).text) as JsonObject;
    const md = obj["metadata"] as JsonObject;
    const { object } = cleanObject(obj);
    return {
      body: Buffer.from(stringifyJson(object)),
      uid: String(md["uid"]),
      rv: String(md["resourceVersion"]),
    };
  }

  async function put(t: number, key: RecordKey, pathname: string): Promise<void> {
    const c = await captured(pathname);
    records.push({ t: T(t), op: "put", ...key, uid: c.uid, rv: c.rv, body: c.body });
  }

  const obj = (plural: string, namespace: string, name: string): RecordKey => ({
    kind: "object",
    group,
    version: "v1",
    plural,
    namespace,
    name,
  });
  const objPath = (plural: string, ns: string, name: string) =>
    `${collectionPath(group, "v1", plural, ns)}/${name}`;

  async function write(method: HttpMethod, pathname: string, body?: object, patch = false) {
    return parseJson(
      (
        await admin.request({
          method,
          path: pathname,
          ...(body ? { body: JSON.stringify(body) } : {}),
          ...(patch ? { contentType: "application/merge-patch+json" } : {}),
        })
      ).text,
    ) as JsonObject;
  }
  const create = (plural: string, ns: string, name: string, spec: object, extra: object = {}) =>
    write("POST", collectionPath(group, "v1", plural, ns), {
      apiVersion: `${group}/v1`,
      kind: plural === "widgets" ? "Widget" : plural === "gizmos" ? "Gizmo" : "Gadget",
      metadata: { name, namespace: ns, ...extra },
      spec,
    });

  async function snapshotState(label: string): Promise<LiveState> {
    return liveState(admin, group, resources(label), { withStatus: true, namespaces: [nsA, nsB, nsC] });
  }

  async function writeChain(place: { cluster: string; base: string }, segments: [number, number][]) {
    let prev: string | null = null;
    for (const [i, [from, to]] of segments.entries()) {
      const b = new SegmentBuilder();
      for (const r of records) {
        const t = Date.parse(r.t);
        if (t > F + from * 1000 && t <= F + to * 1000) b.add(r);
      }
      const seg = await b.encode(
        { ...place, seq: i + 1, prev, from: new Date(F + from * 1000), to: new Date(F + to * 1000) },
        {},
      );
      await storage.write(seg.key, Readable.from([seg.bytes]));
      prev = seg.sha256;
    }
  }

  beforeAll(async () => {
    admin = await adminClient();
    group = `${uniqueName("pit")}.example.com`;
    [nsA, nsB, nsC] = [uniqueName("pit-a"), uniqueName("pit-b"), uniqueName("pit-c")];
    for (const [plural, kind] of [
      ["widgets", "Widget"],
      ["gizmos", "Gizmo"],
    ] as const) {
      await createCrd(admin, crd(group, plural, kind));
      await waitForCrdEstablished(admin, `${plural}.${group}`);
    }
    await createNamespace(admin, nsA);
    await createNamespace(admin, nsB);
    await create("widgets", nsA, "w1", { size: 1 });
    await create("widgets", nsA, "w2", { size: 2 });
    await create("widgets", nsB, "w3", { size: 3 });
    await create("gizmos", nsA, "g1", { color: "red" });

    const prefix = uniqueName("pit");
    location = `s3://${testEnv().s3.bucket}/${prefix}`;
    const { s3 } = testEnv();
    storage = new S3Backend({
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      region: s3.region,
      partSize: 5 * 1024 * 1024,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const snap = await runCli(["snapshot", "--storage", location, "--include-groups", group, "-o", "json"]);
    expect(snap.stderr).not.toMatch(/error/i);
    expect(snap.code).toBe(0);
    base = (JSON.parse(snap.stdout) as { id: string }).id;
    const manifest = await readManifest(storage, base);
    cluster = manifest.cluster.uid;
    F = Date.parse(manifest.finishedAt);
    expected.set("base", await snapshotState("base"));

    // segment 1 (F, F+5]: spec and status changes, a create, a delete
    await write(
      "PATCH",
      objPath("widgets", nsA, "w1"),
      { spec: { size: 10, big: Number.MAX_SAFE_INTEGER } },
      true,
    );
    // the big number goes in as text: JSON.stringify cannot write 2^53+1
    await admin.request({
      method: "PATCH",
      path: objPath("widgets", nsA, "w1"),
      body: `{"spec":{"big":${BIG}}}`,
      contentType: "application/merge-patch+json",
    });
    await put(1, obj("widgets", nsA, "w1"), objPath("widgets", nsA, "w1"));
    await write("PATCH", `${objPath("widgets", nsA, "w1")}/status`, { status: { phase: "Ready" } }, true);
    await put(2, obj("widgets", nsA, "w1"), objPath("widgets", nsA, "w1"));
    await create("widgets", nsB, "w4", { size: 4 });
    await put(3, obj("widgets", nsB, "w4"), objPath("widgets", nsB, "w4"));
    const w3 = await captured(objPath("widgets", nsB, "w3"));
    await write("DELETE", objPath("widgets", nsB, "w3"));
    records.push({ t: T(4), op: "delete", ...obj("widgets", nsB, "w3"), uid: w3.uid, rv: w3.rv });
    expected.set("t1", await snapshotState("t1"));

    // segment 2 (F+5, F+10]: a CRD created, an owned object of it, a new Namespace with an object
    await createCrd(admin, crd(group, "gadgets", "Gadget"));
    await waitForCrdEstablished(admin, `gadgets.${group}`);
    await put(
      6,
      { kind: "crd", name: `gadgets.${group}` },
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.${group}`,
    );
    // the CRD record's body is cleaned as a snapshot cleans CRDs: no status
    const last = records.at(-1) as Extract<JournalRecord, { op: "put" }>;
    const crdBody = parseJson(last.body.toString()) as JsonObject;
    delete crdBody["status"];
    last.body = Buffer.from(stringifyJson(crdBody));
    const w1uid = (await captured(objPath("widgets", nsA, "w1"))).uid;
    await create(
      "gadgets",
      nsA,
      "x1",
      { size: 7 },
      {
        ownerReferences: [{ apiVersion: `${group}/v1`, kind: "Widget", name: "w1", uid: w1uid }],
      },
    );
    await put(7, obj("gadgets", nsA, "x1"), objPath("gadgets", nsA, "x1"));
    await write("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: nsC, labels: { team: "c" } },
    });
    const nsBody = parseJson((await admin.request({ path: `/api/v1/namespaces/${nsC}` })).text) as JsonObject;
    const cleanedNs = cleanObject({ kind: "Namespace", apiVersion: "v1", ...nsBody }, { dropStatus: true });
    records.push({
      t: T(8),
      op: "put",
      kind: "namespace",
      name: nsC,
      uid: String((nsBody["metadata"] as JsonObject)["uid"]),
      rv: "1",
      body: Buffer.from(stringifyJson(cleanedNs.object)),
    });
    await create("widgets", nsC, "w5", { size: 5 });
    await put(8.5, obj("widgets", nsC, "w5"), objPath("widgets", nsC, "w5"));
    expected.set("t2", await snapshotState("t2"));

    // segment 3 (F+10, F+15]: a CRD deleted (its objects go with it), then a re-list of widgets
    // that misses w2, deleted while the watch was away
    const gizmoCrd = await captured(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.${group}`,
    );
    await write("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.${group}`);
    records.push({
      t: T(11),
      op: "delete",
      kind: "crd",
      name: `gizmos.${group}`,
      uid: gizmoCrd.uid,
      rv: gizmoCrd.rv,
    });
    await write("DELETE", objPath("widgets", nsA, "w2"));
    const resync = { kind: "object" as const, group, version: "v1", plural: "widgets" };
    records.push({ t: T(12), op: "resync", phase: "begin", ...resync, rv: "" });
    await put(12.2, obj("widgets", nsA, "w1"), objPath("widgets", nsA, "w1"));
    await put(12.4, obj("widgets", nsB, "w4"), objPath("widgets", nsB, "w4"));
    await put(12.6, obj("widgets", nsC, "w5"), objPath("widgets", nsC, "w5"));
    records.push({ t: T(13), op: "resync", phase: "end", ...resync, rv: "" });
    // wait for the API server's CRD cleanup to take the gizmos away
    for (let i = 0; ; i++) {
      try {
        await admin.request({
          path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.${group}`,
        });
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) break;
        throw e;
      }
      if (i > 300) throw new Error("gizmos CRD not deleted");
      await new Promise((r) => setTimeout(r, 200));
    }
    expected.set("t3", await snapshotState("t3"));

    // segment 4 (F+15, F+20]: a gap (F+15 .. F+18), then one more change
    records.push({
      t: T(18),
      op: "gap",
      from: T(15),
      to: T(18),
      reason: "watch expired (410 Gone)",
      resources: [`widgets.${group}`],
    });
    await write("PATCH", objPath("widgets", nsB, "w4"), { spec: { color: "blue" } }, true);
    await put(19, obj("widgets", nsB, "w4"), objPath("widgets", nsB, "w4"));
    expected.set("t4", await snapshotState("t4"));

    await writeChain({ cluster, base }, [
      [0, 5],
      [5, 10],
      [10, 15],
      [15, 20],
    ]);

    target = await startEnvironment({ log: () => {} });
    targetAdmin = await clientFor(target.kubeconfig);
  }, 240_000);

  afterAll(async () => {
    admin?.close();
    targetAdmin?.close();
    if (target) await stopEnvironment(target);
  });

  /** Restores --at into the target cluster, each source namespace mapped to a fresh one; returns the state mapped back. */
  async function restoreAt(
    at: string,
    label = "t1",
    extra: string[] = [],
  ): Promise<{ code: number | null; stdout: string; stderr: string; state?: LiveState }> {
    const tag = uniqueName("r");
    const map = [nsA, nsB, nsC].flatMap((ns) => ["--namespace-map", `${ns}=${tag}-${ns}`.slice(0, 63)]);
    const res = await runCli([
      "restore",
      "--at",
      at,
      "--storage",
      location,
      "--kubeconfig",
      target.kubeconfig,
      "--restore-status",
      "--existing",
      "update",
      ...map,
      ...extra,
    ]);
    if (res.code !== 0) return res;
    const mapped = [nsA, nsB, nsC].map((ns) => `${tag}-${ns}`.slice(0, 63));
    // every resource the target has a CRD for by now, so an object that should be gone is seen
    const known = resources("t2").filter(([p]) => ["t2", "t3", "t4"].includes(label) || p !== "gadgets");
    const raw = await liveState(targetAdmin, group, known, { withStatus: true, namespaces: mapped });
    const back = (s: string) => mapped.reduce((acc, m, i) => acc.replaceAll(m, [nsA, nsB, nsC][i]!), s);
    const state: LiveState = { forms: new Map(), uids: new Map(), owners: new Map() };
    for (const [k, v] of raw.forms) state.forms.set(back(k), back(v));
    for (const [k, v] of raw.uids) state.uids.set(back(k), v);
    for (const [k, v] of raw.owners) state.owners.set(back(k), v);
    return { ...res, state };
  }

  it("restore --at T into another cluster gives exactly the state at T, for several T", async () => {
    for (const [label, at] of [
      ["t1", T(5)],
      ["t2", T(10)],
      ["t3", T(15)],
      ["t4", "now"],
    ] as const) {
      const res = await restoreAt(at, label);
      expect(res.stderr, label).not.toMatch(/error/i);
      expect(res.code, `${label}: ${res.stderr}`).toBe(0);
      expect([...res.state!.forms.keys()].sort(), label).toEqual(
        [...expected.get(label)!.forms.keys()].sort(),
      );
      expect(res.state!.forms, label).toEqual(expected.get(label)!.forms);
      // owners relinked to the restored owner's uid
      for (const [key, refs] of res.state!.owners) {
        for (const [kind, name, uid] of refs) {
          expect(kind).toBe("Widget");
          expect(uid, `${label} ${key}`).toBe(
            res.state!.uids.get(`widgets ${key.split(" ")[1]!.split("/")[0]}/${name}`),
          );
        }
      }
    }
    // the mid-segment points: before the status change, and before the CRD deletion took effect
    const mid = await restoreAt(T(1.5));
    expect(mid.code, mid.stderr).toBe(0);
    const w1 = mid.state!.forms.get(`widgets ${nsA}/w1`)!;
    expect(w1).toContain(`"big":${BIG}`);
    expect(w1).not.toContain("Ready");
  }, 300_000);

  it("int64 values beyond 2^53 survive the replay byte for byte", async () => {
    const tag = uniqueName("i");
    const res = await runCli([
      "restore",
      "--at",
      T(5),
      "--storage",
      location,
      "--kubeconfig",
      target.kubeconfig,
      "--namespace-map",
      `${nsA}=${tag}`,
      "--include-namespaces",
      nsA,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const text = (await targetAdmin.request({ path: `${collectionPath(group, "v1", "widgets", tag)}/w1` }))
      .text;
    expect(text).toContain(`"big":${BIG}`);
  }, 120_000);

  it("--dry-run --at plans and validates without writing; the report names the point in time", async () => {
    const tag = uniqueName("d");
    const res = await runCli([
      "restore",
      "--at",
      T(10),
      "--storage",
      location,
      "--kubeconfig",
      target.kubeconfig,
      "--dry-run",
      "--namespace-map",
      `${nsC}=${tag}`,
      "--include-namespaces",
      nsC,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^dry run of restore from \d{8}T\d{6}Z-[0-9a-f]{8}: would create \d+/m);
    await expect(targetAdmin.request({ path: `/api/v1/namespaces/${tag}` })).rejects.toMatchObject({
      status: 404,
    });
  }, 120_000);

  it("--at inside a gap, before the base or after the newest window: one line naming the windows, exit 2", async () => {
    const windows = `${T(0)} .. ${T(15)}, ${T(18)} .. ${T(20)}`;
    for (const at of [T(16), T(-3600), T(3600)]) {
      const res = await restoreAt(at);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr.trim().split("\n")).toHaveLength(1);
      expect(res.stderr).toContain(`is not in a recoverable window of cluster ${cluster}: ${windows}`);
    }
    const both = await runCli(["restore", base, "--at", "now", "--storage", location]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/or --at, not both/);
    const neither = await runCli(["restore", "--storage", location]);
    expect(neither.code).toBe(2);
  }, 120_000);

  it("diff --at compares the state at T with the live cluster", async () => {
    const now = await runCli([
      "diff",
      "--at",
      "now",
      "--storage",
      location,
      "--include-groups",
      group,
      "--status",
    ]);
    expect(now.stdout).toMatch(/identical/);
    expect(now.code, now.stderr).toBe(0);
    const t1 = await runCli([
      "diff",
      "--at",
      T(5),
      "--storage",
      location,
      "--include-groups",
      group,
      "-o",
      "json",
    ]);
    expect(t1.code, t1.stderr).toBe(4);
    const result = JSON.parse(t1.stdout) as {
      resources: { resource: string; onlyInSnapshot: string[]; onlyInOther: string[] }[];
    };
    const widgets = result.resources.find((r) => r.resource === `widgets.${group}`)!;
    expect(widgets.onlyInSnapshot).toEqual([`${nsA}/w2`]);
    expect(widgets.onlyInOther).toEqual([`${nsC}/w5`]);
  }, 120_000);

  it("export --at writes the state at T as files", async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "pit-export-")), "out");
    const res = await runCli(["export", "--at", T(10), "--storage", location, "--to", dir, "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/: \d+ CRDs, 3 namespaces, 6 objects as json/);
    const w5 = readFileSync(path.join(dir, group, "widgets", nsC, "w5.json"), "utf8");
    expect(JSON.parse(w5)).toMatchObject({ metadata: { name: "w5", namespace: nsC }, spec: { size: 5 } });
  }, 120_000);

  it("drill --at restores the state at T into the other cluster and checks every object", async () => {
    const res = await runCli([
      "drill",
      "--at",
      T(10),
      "--storage",
      location,
      "--target-kubeconfig",
      target.kubeconfig,
      "--namespace-prefix",
      `${uniqueName("dr")}-`,
      "--restore-status",
      "-o",
      "json",
    ]);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as { result: string; objects: { expected: number; matched: number } };
    expect(r.result).toBe("pass");
    expect(r.objects.expected).toBe(6);
    expect(r.objects.matched).toBe(6);
  }, 180_000);

  it("list shows the recorded window with its gap; inspect shows the chain's gaps", async () => {
    const res = await runCli(["list", "--storage", location, "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { id: string; journal?: unknown }[];
    expect(out.find((s) => s.id === base)?.journal).toEqual(
      expect.objectContaining({
        cluster,
        base,
        from: T(0),
        to: T(20),
        segments: 4,
        windows: [
          { from: T(0), to: T(15) },
          { from: T(18), to: T(20) },
        ],
        gaps: [expect.objectContaining({ from: T(15), to: T(18), reason: "watch expired (410 Gone)" })],
      }),
    );
    const text = await runCli(["list", "--storage", location]);
    expect(text.stdout).toContain(base);
    expect(text.stdout).toMatch(/1 gap/);
    const inspect = await runCli(["inspect", base, "--storage", location]);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain(`gap ${T(15)} .. ${T(18)}`);
  }, 60_000);

  it("a tampered segment is refused, naming it, before anything is written", async () => {
    // segment 2 re-encoded with one body changed, stored under its old key
    const keys: string[] = [];
    for await (const { key } of storage.list(`journal/${cluster}/${base}/`)) keys.push(key);
    const seg2 = keys.find((k) => k.includes("/00000002-"))!;
    const b = new SegmentBuilder();
    for (const r of records.filter((r) => Date.parse(r.t) > F + 5000 && Date.parse(r.t) <= F + 10000)) {
      b.add(
        r.op === "put" && r.kind === "object"
          ? { ...r, body: Buffer.from(r.body.toString().replace('"size":7', '"size":8')) }
          : r,
      );
    }
    const keys1 = keys.find((k) => k.includes("/00000001-"))!;
    const enc = await b.encode(
      {
        cluster,
        base,
        seq: 2,
        prev: keys1.split("-").at(-1)!.slice(0, 64),
        from: new Date(F + 5000),
        to: new Date(F + 10000),
      },
      {},
    );
    await storage.write(seg2, Readable.from([enc.bytes]));
    const tag = uniqueName("x");
    const res = await runCli([
      "restore",
      "--at",
      T(10),
      "--storage",
      location,
      "--kubeconfig",
      target.kubeconfig,
      "--namespace-map",
      `${nsA}=${tag}`,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toContain(`journal segment ${seg2}: SHA-256 of the stored bytes is`);
    expect(res.stderr).toContain("nothing was restored");
    await expect(targetAdmin.request({ path: `/api/v1/namespaces/${tag}` })).rejects.toMatchObject({
      status: 404,
    });
    // a point before the tampered segment still restores
    expect((await restoreAt(T(5))).code).toBe(0);
  }, 120_000);

  it("an encrypted base: --at decrypts it with --identity, and without one says so in one line", async () => {
    const keys = mkdtempSync(path.join(os.tmpdir(), "pit-keys-"));
    const key = path.join(keys, "key.txt");
    const gen = await runCli(["keygen", "--output", key]);
    expect(gen.code, gen.stderr).toBe(0);
    const prefix = uniqueName("pit-enc");
    const where = `s3://${testEnv().s3.bucket}/${prefix}`;
    const snap = await runCli([
      "snapshot",
      "--storage",
      where,
      "--include-groups",
      group,
      "--encrypt-to",
      gen.stdout.trim(),
      "-o",
      "json",
    ]);
    expect(snap.code, snap.stderr).toBe(0);
    const encBase = (JSON.parse(snap.stdout) as { id: string }).id;
    const { s3 } = testEnv();
    const encStorage = new S3Backend({
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      region: s3.region,
      partSize: 5 * 1024 * 1024,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const m = await readManifest(encStorage, encBase);
    expect(m.encryption).toBeDefined();
    // one change after the base: w4 back to its first body (the live w4 is blue)
    const first = records.find((r) => r.op === "put" && r.name === "w4") as Extract<
      JournalRecord,
      { op: "put" }
    >;
    const start = Date.parse(m.finishedAt);
    const b = new SegmentBuilder();
    b.add({ ...first, t: new Date(start + 1000).toISOString() });
    const seg = await b.encode(
      { cluster, base: encBase, seq: 1, prev: null, from: new Date(start), to: new Date(start + 5000) },
      {},
    );
    await encStorage.write(seg.key, Readable.from([seg.bytes]));

    // inspect without an identity still shows the chain: its keys are not encrypted
    const inspect = await runCli(["inspect", encBase, "--storage", where]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain("give --identity to see its resources");
    expect(inspect.stdout).toMatch(/^journal: 1 segments, /m);

    const tag = uniqueName("e");
    const args = [
      "restore",
      "--at",
      "now",
      "--storage",
      where,
      "--kubeconfig",
      target.kubeconfig,
      "--namespace-map",
      `${nsB}=${tag}`,
      "--include-namespaces",
      nsB,
    ];
    const refused = await runCli(args);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toMatch(/--identity/);
    const res = await runCli([...args, "--identity", key]);
    expect(res.code, res.stderr).toBe(0);
    const w4 = parseJson(
      (await targetAdmin.request({ path: `${collectionPath(group, "v1", "widgets", tag)}/w4` })).text,
    ) as JsonObject;
    expect(w4["spec"]).toEqual({ size: 4 });
  }, 120_000);
});
