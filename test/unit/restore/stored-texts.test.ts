import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { archiveFields, type ManifestResource } from "../../../src/archive/manifest.ts";
import type { ObjectRef } from "../../../src/archive/index.ts";
import type { Filters } from "../../../src/objects/filters.ts";
import { LOCAL_ARCHIVE, VerifiedSnapshot } from "../../../src/source/verified.ts";
import {
  gatherStoredTexts,
  MAX_STORED_TEXTS,
  storedTexts,
  type Gathered,
} from "../../../src/restore/stored-texts.ts";
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
      gatherStoredTexts(OPTIONS, gathered),
    );
    const own = await storedTexts(snapshot, KEYS, OPTIONS);
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
      gatherStoredTexts(mapped, gathered),
    );
    expect(gathered.texts).toBeUndefined();
    expect(await storedTexts(snapshot, KEYS, mapped)).toBeUndefined();
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
      gatherStoredTexts(OPTIONS, gathered),
    );
    expect(gathered.texts).toBeUndefined();
    expect(await storedTexts(snapshot, KEYS, OPTIONS)).toBeUndefined();
    // only the selected resources count: widgets alone are within the bound
    const widgets = { ...OPTIONS, filters: { ...ALL, includeResources: ["widgets.example.com"] } };
    const one: Gathered = { texts: undefined };
    await using again = await VerifiedSnapshot.fromLocalArchive(many, dir, gatherStoredTexts(widgets, one));
    expect(one.texts?.get("widgets.example.com")?.size).toBe(3);
    expect(again.id).toBe(SNAPSHOT_ID);
  });
});
