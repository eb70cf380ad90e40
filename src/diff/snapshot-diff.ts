import type { ArchiveEntry } from "../archive/reader.ts";
import type { KubeClient } from "../kube/client.ts";
import { parseJson, type JsonObject } from "../json/json.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import { getJson, liveCrd, liveObjects, objectPath, digestOf } from "../objects/live.ts";
import { comparableForm } from "../objects/normalize.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import { openSource, type SnapshotRef } from "../source/open.ts";
import { nameSelected, namespaceSelected, resourceSelected, type Filters } from "../objects/filters.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { diffJson, type FieldChange } from "../json/diff.ts";

export interface DiffOptions {
  filters: Filters;
  /** Compare status too (it changes constantly on live objects, so it is left out by default). */
  withStatus: boolean;
  /** Field-level diffs are computed for this many changed objects; the rest are listed by name. */
  maxDetails: number;
  signal?: AbortSignal;
}

export interface ResourceDiff {
  /** plural.group */
  resource: string;
  version: string;
  onlyInSnapshot: string[];
  onlyInOther: string[];
  changed: { object: string; diff?: FieldChange[] }[];
}

export interface DiffResult {
  snapshotId: string;
  /** "live", or the other snapshot's id. */
  against: string;
  identical: boolean;
  resources: ResourceDiff[];
}

interface Side {
  /** `namespace/name` -> digest of the comparable form, per resource key. */
  digests: Map<string, Map<string, string>>;
  /** The bodies of `wanted` (`resource object` keys), fetched together: one pass over an archive. */
  bodies(wanted: Set<string>): Promise<Map<string, JsonObject>>;
}

const objectKey = (namespace: string | undefined, name: string) => `${namespace ?? ""}/${name}`;

function selectedEntry(entry: ArchiveEntry, filter: EntryFilter) {
  if (entry.kind !== "object" || !filter.selects(entry)) return undefined;
  return {
    resource: `${entry.ref.plural}.${entry.ref.group}`,
    key: objectKey(entry.ref.namespace, entry.ref.name),
    body: parseJson(entry.body.toString("utf8")) as JsonObject,
  };
}

/** One side from a verified snapshot: digests in memory, bodies re-read on demand (bounded by maxDetails). */
async function snapshotSide(snapshot: VerifiedSnapshot, options: DiffOptions): Promise<Side> {
  const filter = new EntryFilter(options.filters);
  const digests = new Map<string, Map<string, string>>();
  for (const r of snapshot.manifest.resources) {
    if (resourceSelected(options.filters, r.group, r.plural))
      digests.set(`${r.plural}.${r.group}`, new Map());
  }
  for await (const entry of snapshot.entries()) {
    const e = selectedEntry(entry, filter);
    if (e) digests.get(e.resource)?.set(e.key, digestOf(e.body, options.withStatus));
  }
  return {
    digests,
    async bodies(wanted) {
      const found = new Map<string, JsonObject>();
      if (wanted.size === 0) return found;
      for await (const entry of snapshot.entries()) {
        const e = selectedEntry(entry, filter);
        if (e && wanted.has(`${e.resource} ${e.key}`)) found.set(`${e.resource} ${e.key}`, e.body);
      }
      return found;
    },
  };
}

/** The live side: every object of the snapshot's resources, listed at the snapshot's versions. */
async function liveSide(client: KubeClient, snapshot: VerifiedSnapshot, options: DiffOptions): Promise<Side> {
  const digests = new Map<string, Map<string, string>>();
  const versions = new Map<string, { group: string; version: string; plural: string }>();
  for (const r of snapshot.manifest.resources) {
    if (!resourceSelected(options.filters, r.group, r.plural)) continue;
    const key = `${r.plural}.${r.group}`;
    versions.set(key, r);
    const crd = await liveCrd(client, key, options.signal);
    const map = new Map<string, string>();
    if (crd?.info.servedVersions.includes(r.version)) {
      const live = await liveObjects(client, r.group, r.version, r.plural, {
        withStatus: options.withStatus,
        signal: options.signal,
      });
      for (const [k, v] of live) {
        const slash = k.indexOf("/");
        const ns = k.slice(0, slash);
        // without storedText every object is digested
        if (
          (!r.namespaced || namespaceSelected(options.filters, ns)) &&
          nameSelected(options.filters, k.slice(slash + 1))
        )
          map.set(k, v.digest!);
      }
    }
    digests.set(key, map);
  }
  return {
    digests,
    async bodies(wanted) {
      const found = new Map<string, JsonObject>();
      for (const key of wanted) {
        const [resource, object] = key.split(" ") as [string, string];
        const r = versions.get(resource)!;
        const slash = object.indexOf("/");
        const path = objectPath(
          r.group,
          r.version,
          r.plural,
          object.slice(0, slash) || undefined,
          object.slice(slash + 1),
        );
        const body = await getJson(client, path, options.signal);
        if (body) found.set(key, body);
      }
      return found;
    },
  };
}

async function compare(a: Side, b: Side, options: DiffOptions): Promise<ResourceDiff[]> {
  const out: ResourceDiff[] = [];
  const detailed = new Set<string>();
  for (const [resource, left] of a.digests) {
    const right = b.digests.get(resource) ?? new Map<string, string>();
    const diff: ResourceDiff = { resource, version: "", onlyInSnapshot: [], onlyInOther: [], changed: [] };
    for (const [key, digest] of left) {
      const other = right.get(key);
      if (other === undefined) diff.onlyInSnapshot.push(key);
      else if (other !== digest) {
        diff.changed.push({ object: key });
        if (detailed.size < options.maxDetails) detailed.add(`${resource} ${key}`);
      }
    }
    for (const key of right.keys()) if (!left.has(key)) diff.onlyInOther.push(key);
    for (const list of [diff.onlyInSnapshot, diff.onlyInOther]) list.sort();
    diff.changed.sort((p, q) => (p.object < q.object ? -1 : 1));
    out.push(diff);
  }
  for (const [resource, right] of b.digests) {
    if (a.digests.has(resource) || right.size === 0) continue;
    out.push({
      resource,
      version: "",
      onlyInSnapshot: [],
      onlyInOther: [...right.keys()].sort(),
      changed: [],
    });
  }
  // field-level diffs for the first changed objects, with each side's bodies fetched in one go
  const [x, y] = await Promise.all([a.bodies(detailed), b.bodies(detailed)]);
  for (const r of out) {
    for (const c of r.changed) {
      const left = x.get(`${r.resource} ${c.object}`);
      const right = y.get(`${r.resource} ${c.object}`);
      if (left && right) c.diff = diffJson(comparableForm(left, options), comparableForm(right, options));
    }
  }
  return out;
}

/**
 * Compares a snapshot with the live cluster, or with another snapshot: per resource, objects only
 * on one side and objects that changed, with changed field paths (never values). Server-owned
 * fields and owner uids are ignored; status only on request.
 */
export async function diffSnapshot(
  storage: StorageBackend,
  ref: SnapshotRef,
  other: { client: KubeClient } | { snapshot: string },
  options: DiffOptions,
): Promise<DiffResult> {
  await using snapshot = await openSource(storage, ref, options.signal);
  const a = await snapshotSide(snapshot, options);
  const versions = new Map(snapshot.manifest.resources.map((r) => [`${r.plural}.${r.group}`, r.version]));
  let resources: ResourceDiff[];
  let against: string;
  if ("client" in other) {
    against = "live";
    resources = await compare(a, await liveSide(other.client, snapshot, options), options);
  } else {
    await using second = await openSource(storage, other.snapshot, options.signal);
    against = second.id;
    resources = await compare(a, await snapshotSide(second, options), options);
  }
  for (const r of resources) r.version = versions.get(r.resource) ?? "";
  const identical = resources.every(
    (r) => !r.onlyInSnapshot.length && !r.onlyInOther.length && !r.changed.length,
  );
  return { snapshotId: snapshot.id, against, identical, resources };
}
