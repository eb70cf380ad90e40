/** A small storage location written with the real ArchiveWriter and SegmentBuilder: a base and a chain. */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { snapshotIdTime } from "../../../src/archive/format.ts";
import { archiveFields, serializeManifest, type Manifest } from "../../../src/archive/manifest.ts";
import { ArchiveWriter } from "../../../src/archive/writer.ts";
import type { JournalRecord } from "../../../src/journal/segment-format.ts";
import { SegmentBuilder } from "../../../src/journal/segment-writer.ts";
import { archiveKey, manifestKey } from "../../../src/storage/layout.ts";
import { LocalBackend } from "../../../src/storage/local.ts";

export const GROUP = "g.example.com";
export const CLUSTER = "unit-cluster";
export const at = (mmss: string) => new Date(`2026-12-03T05:${mmss}Z`);

export const widget = (name: string, spec: object, status?: object) =>
  Buffer.from(
    JSON.stringify({
      apiVersion: `${GROUP}/v1`,
      kind: "Widget",
      metadata: { name, namespace: "a", labels: { app: name } },
      spec,
      ...(status ? { status } : {}),
    }),
  );

export const key = (name: string) => ({
  kind: "object" as const,
  group: GROUP,
  version: "v1",
  plural: "widgets",
  namespace: "a",
  name,
});

export function freshLocation(): LocalBackend {
  return new LocalBackend(mkdtempSync(path.join(os.tmpdir(), "crd-backup-history-unit-")));
}

/** A base snapshot `id` finished at `finished`, holding the widgets given (name -> body). */
export async function writeBase(
  storage: LocalBackend,
  id: string,
  finished: Date,
  objects: Map<string, Buffer>,
): Promise<void> {
  const writer = new ArchiveWriter(id, { mtime: finished });
  const upload = storage.write(archiveKey(id), writer.stream);
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `widgets.${GROUP}` },
    spec: { group: GROUP, scope: "Namespaced", names: { plural: "widgets", kind: "Widget" }, versions: [] },
  };
  await writer.addCrd(`widgets.${GROUP}`, Buffer.from(JSON.stringify(crd)));
  for (const [name, body] of objects)
    await writer.addObject({ group: GROUP, version: "v1", plural: "widgets", namespace: "a", name }, body, {
      uid: `uid-${name}`,
    });
  await writer.addNamespace(
    "a",
    Buffer.from('{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}'),
  );
  const totals = await writer.finish();
  await upload;
  const manifest: Manifest = {
    toolVersion: "test",
    snapshotId: id,
    status: "complete",
    cluster: { uid: CLUSTER, server: "https://unit.invalid", serverVersion: "v1.36.4" },
    startedAt: snapshotIdTime(id).toISOString(),
    finishedAt: finished.toISOString(),
    options: {},
    resources: [
      {
        group: GROUP,
        version: "v1",
        plural: "widgets",
        kind: "Widget",
        namespaced: true,
        storageVersion: "v1",
        servedVersions: ["v1"],
        count: objects.size,
        bytes: 0,
        listResourceVersion: "1",
        consistent: true,
        errors: [],
      },
    ],
    namespaceErrors: [],
    ...archiveFields(totals),
  };
  await storage.createExclusive(manifestKey(id), Buffer.from(serializeManifest(manifest)));
}

/** Segments of the chain of `base`, each [from, to, records], linked by hash. */
export async function writeChain(
  storage: LocalBackend,
  base: string,
  segments: [Date, Date, JournalRecord[]][],
): Promise<string[]> {
  let prev: string | null = null;
  const keys: string[] = [];
  for (const [i, [from, to, records]] of segments.entries()) {
    const b = new SegmentBuilder();
    for (const r of records) b.add(r);
    const seg = await b.encode({ cluster: CLUSTER, base, seq: i + 1, prev, from, to }, {});
    await storage.write(seg.key, Readable.from([seg.bytes]));
    keys.push(seg.key);
    prev = seg.sha256;
  }
  return keys;
}
