/**
 * CRD version skew against the real kube-apiserver: objects archived at v1alpha1, restored into a
 * cluster whose CRD has moved on. Each case has its own CRD group (no GC: names are never reused):
 * the CRD is created at v1alpha1, objects written and snapshotted, then the CRD is changed in
 * place and the snapshot restored with a namespace map into a fresh namespace.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { collectionPath } from "../../src/kube/discovery.ts";
import { canonicalJson } from "../../src/json/canonical.ts";
import { isJsonObject, type JsonObject } from "../../src/json/json.ts";
import { listPages } from "../../src/kube/list.ts";
import type { RestoreReportDocument } from "../../src/restore/report.ts";
import { runCli } from "../support/cli.ts";
import {
  adminClient,
  createCrd,
  createNamespace,
  uniqueName,
  waitForCrdEstablished,
} from "../support/cluster.ts";

const PLURAL = "gizmos";
const OBJECTS = 4;
/** Beyond 2^53: a lossy parse would change it. */
const BIG = "9007199254740993";

const schema = (required: string[] = []) => ({
  openAPIV3Schema: {
    type: "object",
    properties: {
      spec: {
        type: "object",
        ...(required.length ? { required } : {}),
        properties: {
          size: { type: "integer" },
          big: { type: "integer", format: "int64" },
          name: { type: "string" },
          color: { type: "string" },
        },
      },
      status: { type: "object", properties: { phase: { type: "string" }, observed: { type: "integer" } } },
    },
  },
});

const version = (name: string, served: boolean, storage: boolean, required?: string[]) => ({
  name,
  served,
  storage,
  schema: schema(required),
  subresources: { status: {} },
});

interface Case {
  group: string;
  key: string;
  source: string;
  storage: string;
  snapshotId: string;
  /** name -> canonical {labels, annotations, spec, status} of the originals. */
  originals: Map<string, string>;
}

/** What a restore must bring back exactly, whatever version it is read at. */
function essence(obj: JsonObject): string {
  const md = isJsonObject(obj["metadata"]) ? obj["metadata"] : {};
  return canonicalJson({
    labels: md["labels"] ?? {},
    annotations: md["annotations"] ?? {},
    spec: obj["spec"] ?? {},
    status: obj["status"] ?? {},
  });
}

async function objectsIn(
  admin: KubeClient,
  group: string,
  v: string,
  namespace: string,
): Promise<JsonObject[]> {
  const out: JsonObject[] = [];
  for await (const page of listPages(admin, collectionPath(group, v, PLURAL, namespace), { pageSize: 100 }))
    out.push(...page);
  return out;
}

async function namespaceExists(admin: KubeClient, name: string): Promise<boolean> {
  try {
    await admin.request({ path: `/api/v1/namespaces/${name}` });
    return true;
  } catch {
    return false;
  }
}

describe("restore across CRD version changes", () => {
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(() => admin.close());

  /** A fresh CRD at v1alpha1 with OBJECTS objects (status, labels, annotations, an int64), snapshotted. */
  async function archivedAtV1alpha1(): Promise<Case> {
    const group = `${uniqueName("skew")}.fixtures.crd-backup.io`;
    const key = `${PLURAL}.${group}`;
    await createCrd(admin, {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: key },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural: PLURAL, singular: "gizmo", kind: "Gizmo", listKind: "GizmoList" },
        versions: [version("v1alpha1", true, true)],
      },
    });
    await waitForCrdEstablished(admin, key);
    const source = uniqueName("skew-src");
    await createNamespace(admin, source);
    const base = `/apis/${group}/v1alpha1/namespaces/${source}/${PLURAL}`;
    for (let i = 0; i < OBJECTS; i++) {
      const name = `gizmo-${i}`;
      // a raw body: the int64 must reach the server as written
      await admin.request({
        method: "POST",
        path: base,
        body: `{"apiVersion":"${group}/v1alpha1","kind":"Gizmo","metadata":{"name":"${name}","labels":{"app":"skew","n":"${i}"},"annotations":{"note":"archived at v1alpha1"}},"spec":{"size":${i + 1},"big":${BIG},"name":"g${i}"}}`,
      });
      await admin.request({
        method: "PATCH",
        path: `${base}/${name}/status`,
        contentType: "application/merge-patch+json",
        body: `{"status":{"phase":"Ready","observed":${i}}}`,
      });
    }
    const originals = new Map(
      (await objectsIn(admin, group, "v1alpha1", source)).map((o) => [
        String((o["metadata"] as JsonObject)["name"]),
        essence(o),
      ]),
    );
    expect(originals.size).toBe(OBJECTS);
    expect([...originals.values()][0]).toContain(BIG);
    const storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-skew-"));
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    const snapshotId = (JSON.parse(snap.stdout) as { id: string }).id;
    return { group, key, source, storage, snapshotId, originals };
  }

  /** The target's CRD moves on: its versions replaced in place (a merge patch replaces the list). */
  async function changeCrd(c: Case, versions: object[]): Promise<void> {
    await admin.request({
      method: "PATCH",
      path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${c.key}`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({ spec: { versions } }),
    });
    // the API server serves the new versions once discovery has them: wait until the list answers
    const want = versions.find((v) => (v as { storage: boolean }).storage) as { name: string };
    for (let i = 0; ; i++) {
      try {
        await admin.request({ path: collectionPath(c.group, want.name, PLURAL, c.source) });
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  const restore = (c: Case, target: string, ...more: string[]) =>
    runCli([
      "restore",
      c.snapshotId,
      "--storage",
      c.storage,
      "--restore-status",
      "--namespace-map",
      `${c.source}=${target}`,
      ...more,
    ]);

  function expectExact(c: Case, restored: JsonObject[]): void {
    expect(restored).toHaveLength(OBJECTS);
    for (const o of restored) {
      const name = String((o["metadata"] as JsonObject)["name"]);
      expect(essence(o), name).toBe(c.originals.get(name));
    }
  }

  it("(a) a CRD that serves v1alpha1 and stores v1beta1: converted by the server, restored exactly", async () => {
    const c = await archivedAtV1alpha1();
    await changeCrd(c, [version("v1alpha1", true, false), version("v1beta1", true, true)]);
    const target = uniqueName("skew-dst");

    const dry = await restore(c, target, "--dry-run");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(
      `version: ${c.key} v1alpha1: converted by the server; the cluster's CRD serves v1alpha1, v1beta1, stores v1beta1, conversion None`,
    );
    expect(await namespaceExists(admin, target)).toBe(false);

    const res = await restore(c, target, "-o", "json");
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as RestoreReportDocument;
    expect(report.versions).toEqual([
      {
        resource: c.key,
        archivedVersion: "v1alpha1",
        crd: "live",
        servedVersions: ["v1alpha1", "v1beta1"],
        storageVersion: "v1beta1",
        conversion: "None",
        verdict: "converted",
      },
    ]);
    const objects = report.entries.filter((e) => e.kind === "object");
    expect(objects.map((e) => e.outcome)).toEqual(Array(OBJECTS).fill("created"));
    expect(report.entries.some((e) => e.versionMap)).toBe(false);
    expectExact(c, await objectsIn(admin, c.group, "v1alpha1", target));
  });

  it("(b) a CRD that serves only v1beta1: not served, a conflict, nothing written", async () => {
    const c = await archivedAtV1alpha1();
    await changeCrd(c, [version("v1alpha1", false, false), version("v1beta1", true, true)]);
    const target = uniqueName("skew-dst");

    const dry = await restore(c, target, "--dry-run");
    expect(dry.stdout).toContain(
      `version: ${c.key} v1alpha1: not served (a conflict: none of its objects is written)`,
    );
    // as today for this conflict: the run finished, the CRD was looked at (left as it is), no object restored
    expect(dry.code).toBe(3);

    const res = await restore(c, target);
    expect(res.code).toBe(3);
    expect(res.stdout).toMatch(new RegExp(`conflicts ${OBJECTS}`));
    expect(res.stdout).toContain(
      `does not serve v1alpha1, the version the snapshot stored (it serves v1beta1)`,
    );
    expect(await namespaceExists(admin, target)).toBe(false);
    expect(await objectsIn(admin, c.group, "v1beta1", target)).toHaveLength(0);
  });

  it("(c) the same with --version-map: written through v1beta1, validated first, the report says mapped", async () => {
    const c = await archivedAtV1alpha1();
    await changeCrd(c, [version("v1alpha1", false, false), version("v1beta1", true, true)]);
    const target = uniqueName("skew-dst");
    const map = ["--version-map", `${c.key}=v1alpha1:v1beta1`];

    const dry = await restore(c, target, "--dry-run", ...map);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`version: ${c.key} v1alpha1: mapped v1alpha1->v1beta1;`);
    expect(dry.stdout).toContain(`version map: ${OBJECTS} objects would be written through a map`);

    const text = await restore(c, target, ...map);
    expect(text.code, text.stderr).toBe(0);
    // the objects and their namespace; the CRD is the cluster's, left as it is
    expect(text.stdout).toMatch(
      new RegExp(`success: created ${OBJECTS + 1}, .*skipped 1, failed 0, conflicts 0`),
    );
    expect(text.stdout).toContain(`version map: ${OBJECTS} objects written through a map`);
    const restored = await objectsIn(admin, c.group, "v1beta1", target);
    for (const o of restored) expect(o["apiVersion"]).toBe(`${c.group}/v1beta1`);
    expectExact(c, restored);

    // a second run: compared through the map, every object is unchanged; the report names the map
    const again = await restore(c, target, ...map, "-o", "json");
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as RestoreReportDocument;
    expect(report.counts.unchanged).toBe(OBJECTS);
    expect(report.versions?.[0]).toMatchObject({ verdict: "mapped", writtenVersion: "v1beta1" });
    const objects = report.entries.filter((e) => e.kind === "object");
    expect(objects).toHaveLength(OBJECTS);
    for (const e of objects) expect(e.versionMap).toEqual({ from: "v1alpha1", to: "v1beta1" });
  });

  it("(d) a map to a version whose schema refuses the objects fails in the dry-run validation, naming them; nothing written", async () => {
    const c = await archivedAtV1alpha1();
    // v1beta1 requires spec.color, which no archived object has
    await changeCrd(c, [version("v1alpha1", false, false), version("v1beta1", true, true, ["color"])]);
    const target = uniqueName("skew-dst");
    await createNamespace(admin, target);

    const res = await restore(c, target, "--version-map", `${c.key}=v1alpha1:v1beta1`);
    expect(res.code).toBe(1);
    // the log's JSON lines aside, one line says why
    const lines = res.stderr.split("\n").filter((l) => l.startsWith("crd-backup:"));
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^crd-backup: --version-map: the target refuses ${OBJECTS} of ${OBJECTS} mapped objects in a server-side dry run: `,
      ),
    );
    for (let i = 0; i < OBJECTS; i++) expect(lines[0]).toContain(`${c.key} ${target}/gizmo-${i} (`);
    // named in archive order, whatever order the server's answers came in
    expect(lines[0]).toMatch(/gizmo-0 .*gizmo-1 .*gizmo-2 .*gizmo-3 /);
    expect(lines[0]).toContain(`${c.key} ${target}/gizmo-0 (spec.color: Required value)`);
    expect(lines[0]).toMatch(/; nothing was written$/);
    expect(await objectsIn(admin, c.group, "v1beta1", target)).toHaveLength(0);

    // into a namespace that is not there yet: the server validates only in a namespace that exists,
    // so the restore creates it first, and still writes no object
    const fresh = uniqueName("skew-dst");
    const later = await restore(c, fresh, "--version-map", `${c.key}=v1alpha1:v1beta1`);
    expect(later.code).toBe(1);
    expect(later.stderr).toMatch(
      /crd-backup: --version-map: the target refuses 4 of 4 .*; no object was written \(only the namespaces the restore needs were created\)\n/,
    );
    expect(await namespaceExists(admin, fresh)).toBe(true);
    expect(await objectsIn(admin, c.group, "v1beta1", fresh)).toHaveLength(0);
  });

  it("(e) a conversion webhook is named with its service in the plan, before anything is written", async () => {
    const c = await archivedAtV1alpha1();
    await changeCrd(c, [version("v1alpha1", true, false), version("v1beta1", true, true)]);
    // a webhook nothing answers: the plan names it; the writes that need it are refused by the server
    await admin.request({
      method: "PATCH",
      path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${c.key}`,
      contentType: "application/merge-patch+json",
      body: JSON.stringify({
        spec: {
          conversion: {
            strategy: "Webhook",
            webhook: {
              conversionReviewVersions: ["v1"],
              clientConfig: {
                service: { namespace: "gizmo-system", name: "gizmo-webhook", path: "/convert" },
              },
            },
          },
        },
      }),
    });
    const target = uniqueName("skew-dst");
    const res = await restore(c, target, "--dry-run", "-o", "json");
    const report = JSON.parse(res.stdout) as RestoreReportDocument;
    expect(report.versions).toEqual([
      {
        resource: c.key,
        archivedVersion: "v1alpha1",
        crd: "live",
        servedVersions: ["v1alpha1", "v1beta1"],
        storageVersion: "v1beta1",
        conversion: "Webhook",
        webhook: "service gizmo-system/gizmo-webhook:443/convert",
        verdict: "converted",
      },
    ]);
    // the log says it before the first write
    expect(res.stderr).toContain('"msg":"version skew"');
    const text = await restore(c, target, "--dry-run");
    expect(text.stdout).toContain(
      `version: ${c.key} v1alpha1: converted by the server; the cluster's CRD serves v1alpha1, v1beta1, stores v1beta1, conversion Webhook (service gizmo-system/gizmo-webhook:443/convert)`,
    );
    expect(await namespaceExists(admin, target)).toBe(false);
  });

  it("bad --version-map values: one usage line each, exit 2, nothing written", async () => {
    const c = await archivedAtV1alpha1();
    await changeCrd(c, [version("v1alpha1", false, false), version("v1beta1", true, true)]);
    const target = uniqueName("skew-dst");
    const cases: [string, RegExp][] = [
      [`${c.key}`, /--version-map takes RESOURCE=FROM:TO/],
      [`${c.key}=v1beta1:v1beta1`, /FROM and TO are the same version/],
      [`nothings.${c.group}=v1alpha1:v1beta1`, /the restore has no resource nothings\./],
      [`${c.key}=v1alpha1:v2`, /the cluster's CRD does not serve v2 \(it serves v1beta1\)/],
      [`${c.key}=v1:v1beta1`, /the snapshot's objects are at v1alpha1, not v1/],
    ];
    for (const [value, message] of cases) {
      const res = await restore(c, target, "--version-map", value);
      expect(res.code, value).toBe(2);
      const lines = res.stderr.split("\n").filter((l) => l.startsWith("crd-backup:"));
      expect(lines, value).toHaveLength(1);
      expect(lines[0], value).toMatch(message);
    }
    expect(await namespaceExists(admin, target)).toBe(false);
  });
});
