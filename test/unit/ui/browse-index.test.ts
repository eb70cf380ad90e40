import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ArchiveWriter, ObjectRef } from "../../../src/archive/index.ts";
import { FORMAT_VERSION } from "../../../src/archive/format.ts";
import { archiveFields, serializeManifest, type Manifest } from "../../../src/archive/manifest.ts";
import { CrdBackupError } from "../../../src/errors.ts";
import { archiveKey, manifestKey } from "../../../src/storage/layout.ts";
import { LocalBackend } from "../../../src/storage/local.ts";
import { BrowseCache } from "../../../src/ui/browse-cache.ts";
import type { ChangeKey } from "../../../src/ui/browse-index.ts";
import { SNAPSHOT_ID, crdBody, objectBody, writeArchive } from "../archive/helpers.ts";

const GROUP = "example.com";
const widget = (namespace: string, name: string): ObjectRef => ({
  group: GROUP,
  version: "v1",
  plural: "widgets",
  namespace,
  name,
});
const policy = (name: string): ObjectRef => ({ group: GROUP, version: "v1", plural: "policies", name });

/** Objects in the order a snapshot listing resources at once may write them: interleaved, unsorted. */
const OBJECTS: ObjectRef[] = [];
for (let i = 37; i >= 0; i--) {
  OBJECTS.push(widget(`team-${i % 3}`, `w-${String(i).padStart(2, "0")}`));
  if (i % 5 === 0) OBJECTS.push(policy(`p-${i}`));
}

async function location(
  tamper = false,
  id = SNAPSHOT_ID,
  root = mkdtempSync(path.join(os.tmpdir(), "crd-backup-ui-store-")),
  objects = OBJECTS,
  spec = (_ref: ObjectRef): Record<string, unknown> => ({ big: JSON.rawJSON("9223372036854775807") }),
): Promise<{ storage: LocalBackend; root: string }> {
  const build = async (w: ArchiveWriter) => {
    await w.addCrd(`widgets.${GROUP}`, crdBody(`widgets.${GROUP}`));
    await w.addCrd(`policies.${GROUP}`, crdBody(`policies.${GROUP}`));
    for (const ref of objects) {
      await w.addObject(ref, objectBody(ref, { spec: spec(ref) }), {
        uid: `uid-${ref.name}`,
      });
    }
  };
  const { bytes, totals } = await writeArchive(build, id, FORMAT_VERSION);
  if (tamper) bytes[bytes.length - 40]! ^= 1; // a flipped bit near the end: found only when the reader finishes
  mkdirSync(path.dirname(path.join(root, archiveKey(id))), { recursive: true });
  writeFileSync(path.join(root, archiveKey(id)), bytes);
  const resource = (plural: string, kind: string, namespaced: boolean) => ({
    group: GROUP,
    version: "v1",
    plural,
    kind,
    namespaced,
    storageVersion: "v1",
    servedVersions: ["v1"],
    count: objects.filter((o) => o.plural === plural).length,
    bytes: 0,
    listResourceVersion: "1",
    consistent: true,
    errors: [],
  });
  const manifest: Manifest = {
    toolVersion: "test",
    snapshotId: id,
    status: "complete",
    cluster: { uid: "c", server: "https://k", serverVersion: "v1.36.4" },
    startedAt: "2026-11-22T04:15:00Z",
    finishedAt: "2026-11-22T04:15:01Z",
    options: {},
    resources: [resource("widgets", "Widget", true), resource("policies", "Policy", false)],
    namespaceErrors: [],
    ...archiveFields(totals),
  };
  writeFileSync(path.join(root, manifestKey(id)), serializeManifest(manifest));
  return { storage: new LocalBackend(root), root };
}

describe("browse index", () => {
  it("pages every object of a namespace exactly once, by name, whatever the archive's order", async () => {
    const { storage } = await location();
    const cache = new BrowseCache(storage, 2);
    const ref = { snapshot: SNAPSHOT_ID };
    const seen: string[] = [];
    let after = "";
    let pages = 0;
    for (;;) {
      const page = await cache.use(ref, (i) => i.objects(GROUP, "widgets", "team-1", after, 4));
      pages++;
      expect(page.items.length).toBeLessThanOrEqual(4);
      seen.push(...page.items.map((o) => o.name));
      if (page.next === undefined) break;
      after = page.next;
    }
    const expected = OBJECTS.filter((o) => o.plural === "widgets" && o.namespace === "team-1")
      .map((o) => o.name)
      .sort();
    expect(seen).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 4));
    const ns = await cache.use(ref, (i) => i.namespaces(GROUP, "widgets", "", 2));
    expect(ns.items).toEqual([
      { namespace: "team-0", count: 13 },
      { namespace: "team-1", count: 13 },
    ]);
    expect(ns.next).toBe("team-1");
    expect((await cache.use(ref, (i) => i.namespaces(GROUP, "widgets", "team-1", 2))).items).toEqual([
      { namespace: "team-2", count: 12 },
    ]);
    const cluster = await cache.use(ref, (i) => i.objects(GROUP, "policies", "", "", 100));
    expect(cluster.items.map((o) => o.name)).toEqual([
      "p-0",
      "p-10",
      "p-15",
      "p-20",
      "p-25",
      "p-30",
      "p-35",
      "p-5",
    ]);
    await cache.close();
  });

  it("lists what differs between two states, a page at a time", async () => {
    const { root } = await location();
    const second = "20261122T041500Z-1a2b3c4e";
    const later = [...OBJECTS.filter((o) => o.name !== "w-00"), widget("team-1", "w-99"), policy("p-99")];
    const { storage } = await location(false, second, root, later, (ref) =>
      ref.name === "w-10" ? { n: 2 } : { big: JSON.rawJSON("9223372036854775807") },
    );
    const cache = new BrowseCache(storage, 4);
    const seen: string[] = [];
    let after: ChangeKey | undefined;
    do {
      const page = await cache.use({ snapshot: SNAPSHOT_ID }, (a) =>
        cache.use({ snapshot: second }, (b) => a.changesTo(b, after, 7)),
      );
      expect(page.items.length).toBeLessThanOrEqual(7);
      seen.push(...page.items.map((c) => `${c.change} ${c.res} ${c.ns}/${c.name}`));
      after = page.next;
    } while (after);
    // the unchanged objects (same bytes) are not listed
    expect(seen).toEqual([
      "added policies.example.com /p-99",
      "removed widgets.example.com team-0/w-00",
      "changed widgets.example.com team-1/w-10",
      "added widgets.example.com team-1/w-99",
    ]);
    await cache.close();
  });

  it("reads one object back byte for byte, int64 beyond 2^53 included, and knows what is absent", async () => {
    const { storage } = await location();
    const cache = new BrowseCache(storage, 2);
    const ref = { snapshot: SNAPSHOT_ID };
    const o = await cache.use(ref, (i) =>
      i.object({ group: GROUP, plural: "widgets", namespace: "team-2", name: "w-05" }),
    );
    const original = objectBody(widget("team-2", "w-05"), {
      spec: { big: JSON.rawJSON("9223372036854775807") },
    });
    expect(o?.body.equals(original)).toBe(true);
    expect(o?.body.toString()).toContain("9223372036854775807");
    expect(o).toMatchObject({
      name: "w-05",
      kind: "Widget",
      uid: "uid-w-05",
      version: "v1",
      size: original.length,
    });
    expect(
      await cache.use(ref, (i) =>
        i.object({ group: GROUP, plural: "widgets", namespace: "team-1", name: "w-05" }),
      ),
    ).toBeUndefined();
    await cache.close();
  });

  it("refuses to show an object whose local copy was changed after it was verified", async () => {
    const { storage } = await location();
    const tmp = mkdtempSync(path.join(os.tmpdir(), "crd-backup-ui-tmp-"));
    const cache = new BrowseCache(storage, 2, tmp);
    const ref = { snapshot: SNAPSHOT_ID };
    const key = { group: GROUP, plural: "widgets", namespace: "team-2", name: "w-05" };
    expect(await cache.use(ref, (i) => i.object(key))).toBeDefined();
    const copy = path.join(tmp, readdirSync(tmp)[0]!);
    const bodies = path.join(copy, readdirSync(copy)[0]!, "bodies");
    const bytes = readFileSync(bodies);
    bytes.fill(0); // every block: whatever the object's block, it no longer inflates to its bytes
    writeFileSync(bodies, bytes);
    await expect(cache.use(ref, (i) => i.object(key))).rejects.toThrow(
      /local browse copy of w-05 is damaged/,
    );
    await cache.close();
  });

  it("shows nothing of an archive that fails verification, and leaves no scratch copy", async () => {
    const { storage } = await location(true);
    const tmp = mkdtempSync(path.join(os.tmpdir(), "crd-backup-ui-tmp-"));
    const cache = new BrowseCache(storage, 2, tmp);
    const e = await cache
      .use({ snapshot: SNAPSHOT_ID }, (i) => i.objects(GROUP, "widgets", "team-1", "", 10))
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CrdBackupError);
    expect((e as CrdBackupError).code).toBe("ARCHIVE_INVALID");
    expect((e as Error).message).toMatch(new RegExp(`^snapshot ${SNAPSHOT_ID}: `));
    const scratch = readdirSync(tmp);
    expect(scratch).toHaveLength(1); // the cache's folder, empty
    expect(readdirSync(path.join(tmp, scratch[0]!))).toEqual([]);
    await cache.close();
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("keeps at most maxOpen copies, dropping the least recently used, and keeps no failed build", async () => {
    const { root } = await location();
    const second = "20261122T041500Z-1a2b3c4e";
    const { storage } = await location(false, second, root);
    const tmp = mkdtempSync(path.join(os.tmpdir(), "crd-backup-ui-tmp-"));
    const cache = new BrowseCache(storage, 1, tmp);
    const copies = () => readdirSync(path.join(tmp, readdirSync(tmp)[0]!));
    await cache.use({ snapshot: SNAPSHOT_ID }, (i) => i.objects(GROUP, "widgets", "team-1", "", 1));
    const first = copies();
    expect(first).toHaveLength(1);
    await cache.use({ snapshot: second }, (i) => i.objects(GROUP, "widgets", "team-1", "", 1));
    expect(copies()).toHaveLength(1);
    expect(copies()).not.toEqual(first); // the first was dropped for the second
    await expect(cache.use({ cluster: "c", at: new Date("2026-11-22T05:00:00Z") }, () => 1)).rejects.toThrow(
      /no journal of a cluster c/,
    );
    expect(copies()).toHaveLength(1); // a failed build is not kept, and costs the kept one nothing
    await cache.close();
  });
});
