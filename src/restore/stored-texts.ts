/**
 * The source's objects as text digests (objects/live.ts textDigest), per resource and
 * `namespace/name`, read before the live objects are: the live read then parses only the objects
 * whose text differs. Only when an object's key and text in the target are its archived ones: no
 * namespace mapping, no resource modifiers. Gathered in the snapshot's verification pass when the
 * restore opens the source itself (gatherStoredTexts), else in a pass of their own (storedTexts).
 *
 * Only for resources the target already has objects of: a restore into an empty cluster (the usual
 * recovery) has nothing to compare, and holding a digest per archived object there took a restore
 * of 300,000 objects from 228 to 375 MiB peak RSS.
 */
import type { ManifestResource, PlainManifest } from "../archive/manifest.ts";
import type { ArchiveEntry } from "../archive/reader.ts";
import { mapConcurrent } from "../concurrency.ts";
import type { KubeClient } from "../kube/client.ts";
import { hasLiveObjects, liveKey, textDigest } from "../objects/live.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import { resourceSelected } from "../objects/filters.ts";
import type { EntrySeen, EntryVisitor, VerifiedSnapshot } from "../source/verified.ts";
import type { RestoreOptions } from "./options.ts";

export type StoredTexts = Map<string, Map<string, string>>;

type TextOptions = Pick<
  RestoreOptions,
  "filters" | "namespaceMap" | "namespacePrefix" | "modifiers" | "restoreStatus" | "signal"
>;

/** What gathering found: `texts` undefined when targets are not the archived objects as they are. */
export interface Gathered {
  texts: StoredTexts | undefined;
  /**
   * Settles once the pass has seen every object the manifest counts of a resource (or the index):
   * its texts are whole, and its live read can start while the pass goes on (plan-live.ts).
   * Rejects, with the pass's error, when the pass fails before.
   */
  ready?: (resource: string) => Promise<void>;
}

/**
 * The most objects whose digests are held (about 250 bytes each), counted over the resources the
 * target has objects of: past it the live read parses every object, as it does with mapping or
 * modifiers, so the digests never cost more than about 25 MB.
 */
export const MAX_STORED_TEXTS = 100_000;

/** Resources the target has no object of read no digests: their objects are all created. */
const PROBES = 8;

/** Undefined when targets are not the archived objects as they are (mapped, or modified), or too many. */
export async function storedTexts(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  resources: ReadonlySet<string>,
  options: TextOptions,
): Promise<StoredTexts | undefined> {
  const selected = snapshot.manifest.resources.filter((r) => resources.has(`${r.plural}.${r.group}`));
  const add = await collector(client, selected, options);
  if (!add) return undefined;
  for await (const entry of snapshot.entries()) add.visit(entry);
  return add.texts;
}

/**
 * The same texts, gathered by the verification pass of the source a restore opens (one pass over
 * every entry fewer): `gathered` is filled in when that pass starts, and holds once it succeeded.
 */
export function gatherStoredTexts(
  client: KubeClient,
  options: TextOptions,
  gathered: Gathered,
): EntryVisitor {
  return async (manifest: PlainManifest) => {
    const selected = manifest.resources.filter((r) => resourceSelected(options.filters, r.group, r.plural));
    const add = await collector(client, selected, options);
    gathered.texts = add?.texts;
    if (!add) return undefined;
    const { visit, ready } = readiness(selected, add.visit);
    gathered.ready = ready;
    return visit;
  };
}

/**
 * Which resources' texts are whole: counted against the manifest's count of each, all at the index
 * (a manifest that miscounts only delays a read; the pass's end checks the archive against it).
 */
function readiness(
  selected: readonly ManifestResource[],
  visit: (entry: ArchiveEntry) => void,
): { visit: EntrySeen; ready: (resource: string) => Promise<void> } {
  const left = new Map<string, { count: number; done: PromiseWithResolvers<void> }>();
  for (const r of selected) {
    const done = Promise.withResolvers<void>();
    done.promise.catch(() => undefined); // a pass that fails rejects reads that may never wait
    left.set(`${r.plural}.${r.group}`, { count: r.count, done });
  }
  for (const l of left.values()) if (l.count === 0) l.done.resolve();
  const seen: EntrySeen = (entry) => {
    visit(entry);
    if (entry.kind === "index") for (const l of left.values()) l.done.resolve();
    if (entry.kind !== "object") return;
    const l = left.get(`${entry.ref.plural}.${entry.ref.group}`);
    if (l && --l.count === 0) l.done.resolve();
  };
  // the texts of a failed pass are never whole: the reads waiting for them give up (settled ones stay)
  seen.abandon = (reason) => {
    for (const l of left.values()) l.done.reject(reason);
  };
  return { visit: seen, ready: (resource) => left.get(resource)?.done.promise ?? Promise.resolve() };
}

async function collector(
  client: KubeClient,
  selected: readonly ManifestResource[],
  options: TextOptions,
): Promise<{ texts: StoredTexts; visit: (entry: ArchiveEntry) => void } | undefined> {
  if (options.modifiers || options.namespaceMap.size > 0 || options.namespacePrefix) return undefined;
  const live = await mapConcurrent(selected, PROBES, (r) =>
    hasLiveObjects(client, r.group, r.version, r.plural, options.signal),
  );
  const compared = selected.filter((_, i) => live[i]);
  if (compared.reduce((n, r) => n + r.count, 0) > MAX_STORED_TEXTS) return undefined;
  const keys = new Set(compared.map((r) => `${r.plural}.${r.group}`));
  const filter = new EntryFilter(options.filters, keys);
  const texts: StoredTexts = new Map();
  const visit = (entry: ArchiveEntry) => {
    if (entry.kind !== "object" || !filter.selectsRef(entry.ref)) return;
    const resource = `${entry.ref.plural}.${entry.ref.group}`;
    let map = texts.get(resource);
    if (!map) texts.set(resource, (map = new Map()));
    map.set(liveKey(entry.ref.namespace, entry.ref.name), textDigest(entry.body, options.restoreStatus));
  };
  return { texts, visit };
}
