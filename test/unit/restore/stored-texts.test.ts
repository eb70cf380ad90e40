import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { archiveFields, type ManifestResource } from "../../../src/archive/manifest.ts";
import type { ObjectRef } from "../../../src/archive/index.ts";
import { KubeApiError } from "../../../src/errors.ts";
import type { KubeClient } from "../../../src/kube/client.ts";
import type { Filters } from "../../../src/objects/filters.ts";
import { LOCAL_ARCHIVE, VerifiedSnapshot } from "../../../src/source/verified.ts";
import {
  gatherStoredTexts,
  MAX_STORED_TEXTS,
  storedTexts,
  type Gathered,
} from "../../../src/restore/stored-texts.ts";
import { earlyLiveReads } from "../../../src/restore/plan-live.ts";
import type { RestoreOptions } from "../../../src/restore/options.ts";
import { crdBody, namespaceBody, objectBody, SNAPSHOT_ID, writeArchive } from "../archive/helpers.ts";
import { emptyManifest } from "../support/manifests.ts";

const ALL: Filters = {
  includeGroups: [],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};
const OPTIONS = { filters: ALL, namespaceMap: new Map<string, string>(), restoreStatus: false };
const KEYS = new Set(["widgets.example.com", "gadgets.example.com"]);

/**
 * A target whose `populated` resources have one object each; any other LIST is refused with
 * `refusal` (404: no CRD; 503: an aggregated API server that is down).
 */
const serving = (populated: string[], refusal = 404) =>
  ({
    request: async ({ path: p }: { path: string }) => {
      const plural = /\/apis\/example\.com\/v1\/([a-z]+)\?limit=1$/.exec(p)?.[1];
      if (!plural) throw new Error(`unexpected request ${p}`);
      if (!populated.includes(plural)) throw new KubeApiError(refusal, "refused", { method: "GET", path: p });
      return { text: JSON.stringify({ items: [{ metadata: { name: "x" } }] }) };
    },
  }) as unknown as KubeClient;
const target = (...populated: string[]) => serving(populated);
const BOTH = target("widgets", "gadgets");

const resource = (plural: string): ManifestResource => ({
  group: "example.com",
  version: "v1",
  plural,
  kind: "Widget",
  namespaced: true,
  storageVersion: "v1",
  servedVersions: ["v1"],
  count: 0,
  bytes: 0,
  listResourceVersion: "1",
  consistent: true,
  errors: [],
});

/** widgets a, b, then gadgets c, then widgets d again: the format lets resources interleave. */
async function localArchive(): Promise<{ dir: string; manifest: ReturnType<typeof emptyManifest> }> {
  const ref = (plural: string, name: string): ObjectRef => ({
    group: "example.com",
    version: "v1",
    plural,
    namespace: "team-a",
    name,
  });
  const { bytes, totals } = await writeArchive(async (w) => {
    await w.addCrd("widgets.example.com", crdBody("widgets.example.com"));
    for (const [plural, name] of [
      ["widgets", "a"],
      ["widgets", "b"],
      ["gadgets", "c"],
      ["widgets", "d"],
    ] as const) {
      const r = ref(plural, name);
      await w.addObject(r, objectBody(r, { spec: { name }, status: { seen: name } }), { uid: `uid-${name}` });
    }
    await w.addNamespace("team-a", namespaceBody("team-a"));
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-texts-"));
  writeFileSync(path.join(dir, LOCAL_ARCHIVE), bytes);
  const manifest = {
    ...emptyManifest("c", new Date("2026-11-22T04:15:00Z"), 1000, SNAPSHOT_ID),
    ...archiveFields(totals, 1),
    resources: [resource("widgets"), resource("gadgets")],
  };
  return { dir, manifest };
}

describe("stored texts gathered by the verification pass", () => {
  it("are the texts a pass of their own reads, also of a resource whose objects interleave", async () => {
    const { dir, manifest } = await localArchive();
    const gathered: Gathered = { texts: undefined };
    await using snapshot = await VerifiedSnapshot.fromLocalArchive(
      manifest,
      dir,
      gatherStoredTexts(BOTH, OPTIONS, gathered),
    );
    const own = await storedTexts(BOTH, snapshot, KEYS, OPTIONS);
    expect(own?.get("widgets.example.com")?.size).toBe(3);
    expect(own?.get("gadgets.example.com")?.size).toBe(1);
    expect(gathered.texts).toEqual(own);
  });

  it("are not gathered where targets are not the archived objects (a namespace map)", async () => {
    const { dir, manifest } = await localArchive();
    const gathered: Gathered = { texts: undefined };
    const mapped = { ...OPTIONS, namespaceMap: new Map([["team-a", "team-b"]]) };
    await using snapshot = await VerifiedSnapshot.fromLocalArchive(
      manifest,
      dir,
      gatherStoredTexts(BOTH, mapped, gathered),
    );
    expect(gathered.texts).toBeUndefined();
    expect(await storedTexts(BOTH, snapshot, KEYS, mapped)).toBeUndefined();
  });

  it("are not gathered for more selected objects than MAX_STORED_TEXTS: the plan's memory stays bounded", async () => {
    const { dir, manifest } = await localArchive();
    const many = {
      ...manifest,
      resources: [
        { ...resource("widgets"), count: MAX_STORED_TEXTS },
        { ...resource("gadgets"), count: 1 },
      ],
    };
    const gathered: Gathered = { texts: undefined };
    await using snapshot = await VerifiedSnapshot.fromLocalArchive(
      many,
      dir,
      gatherStoredTexts(BOTH, OPTIONS, gathered),
    );
    expect(gathered.texts).toBeUndefined();
    expect(await storedTexts(BOTH, snapshot, KEYS, OPTIONS)).toBeUndefined();
    // only the selected resources count: widgets alone are within the bound
    const widgets = { ...OPTIONS, filters: { ...ALL, includeResources: ["widgets.example.com"] } };
    const one: Gathered = { texts: undefined };
    await using again = await VerifiedSnapshot.fromLocalArchive(
      many,
      dir,
      gatherStoredTexts(BOTH, widgets, one),
    );
    expect(one.texts?.get("widgets.example.com")?.size).toBe(3);
    expect(again.id).toBe(SNAPSHOT_ID);
  });

  it("are held only for resources the target has objects of: a restore into an empty cluster holds none", async () => {
    const { dir, manifest } = await localArchive();
    const many = {
      ...manifest,
      resources: [{ ...resource("widgets"), count: MAX_STORED_TEXTS }, resource("gadgets")],
    };
    const gathered: Gathered = { texts: undefined };
    await using snapshot = await VerifiedSnapshot.fromLocalArchive(
      many,
      dir,
      gatherStoredTexts(target("gadgets"), OPTIONS, gathered),
    );
    // widgets are not in the target, so their MAX_STORED_TEXTS objects neither count nor are held
    expect([...(gathered.texts?.keys() ?? [])]).toEqual(["gadgets.example.com"]);
    expect(await storedTexts(target("gadgets"), snapshot, KEYS, OPTIONS)).toEqual(gathered.texts);
    const empty = await storedTexts(target(), snapshot, KEYS, OPTIONS);
    expect(empty?.size).toBe(0);
    // an aggregated API server that is down (503) is not the probe's to report: planning's guards say it
    expect((await storedTexts(serving([], 503), snapshot, KEYS, OPTIONS))?.size).toBe(0);
  });

  /** The local archive's manifest counting its 3 widgets and 1 gadget, and `more` resources. */
  const countedAs = <M extends { resources: unknown[] }>(manifest: M, ...more: ManifestResource[]) => ({
    ...manifest,
    resources: [{ ...resource("widgets"), count: 3 }, { ...resource("gadgets"), count: 1 }, ...more],
  });

  it("say when a resource's texts are whole, by the manifest's count, so its live read can start during the pass", async () => {
    const { dir, manifest } = await localArchive();
    // a manifest that miscounts only delays a read: settled at the index
    const counted = countedAs(manifest, { ...resource("things"), count: 5 });
    const gathered: Gathered = { texts: undefined };
    const gather = gatherStoredTexts(BOTH, OPTIONS, gathered);
    const settled: string[] = [];
    await using snapshot = await VerifiedSnapshot.fromLocalArchive(counted, dir, async (m) => {
      const seen = await gather(m);
      for (const key of ["widgets.example.com", "gadgets.example.com", "things.example.com"])
        void gathered.ready!(key).then(() => settled.push(`${key} ${gathered.texts?.get(key)?.size ?? 0}`));
      return seen;
    });
    await new Promise((resolve) => setImmediate(resolve));
    // gadgets' one object comes before widgets' last: each settles with all its texts
    expect(settled).toEqual(["gadgets.example.com 1", "widgets.example.com 3", "things.example.com 0"]);
    expect(snapshot.id).toBe(SNAPSHOT_ID);
  });

  it("reject the live reads still waiting for their texts when the pass fails: nothing waits on a pass that ended", async () => {
    const { dir, manifest } = await localArchive();
    const counted = countedAs(manifest);
    // cut short after gadgets' object, before widgets' last (the index and the namespace follow it)
    const file = path.join(dir, LOCAL_ARCHIVE);
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    // the probes find objects; a resource whose read starts finds no CRD (404), as in a fresh target
    const client = {
      request: async (req: { path: string }) =>
        req.path.endsWith("?limit=1")
          ? BOTH.request(req as never)
          : Promise.reject(new KubeApiError(404, "not found", { method: "GET", path: req.path })),
    } as unknown as KubeClient;
    const options = {
      ...OPTIONS,
      existing: "skip",
      existingFor: new Map(),
      dryRun: false,
    } as unknown as RestoreOptions;
    const gathered: Gathered = { texts: undefined };
    const gather = gatherStoredTexts(client, options, gathered);
    let reads: ReturnType<typeof earlyLiveReads>;
    const pass = VerifiedSnapshot.fromLocalArchive(counted, dir, async (m) => {
      const seen = await gather(m);
      reads = earlyLiveReads(client, m, options, gathered);
      return seen;
    });
    const failure = await pass.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(failure)).toMatch(/truncated|corrupt/);
    // widgets' texts never became whole: their wait and their read are rejected with the pass's error
    await expect(gathered.ready!("widgets.example.com")).rejects.toBe(failure);
    await expect(reads!.resource("widgets.example.com")).rejects.toBe(failure);
    await expect(reads!.all()).rejects.toBe(failure);
    // gadgets' were whole before the cut: their read ran, and stays as it was
    await expect(gathered.ready!("gadgets.example.com")).resolves.toBeUndefined();
    expect((await reads!.resource("gadgets.example.com")).crdLive).toBe(false);
  });
});
