/**
 * The source's objects as text digests (objects/live.ts textDigest), per resource and
 * `namespace/name`, read before the live objects are: the live read then parses only the objects
 * whose text differs. Only when an object's key and text in the target are its archived ones: no
 * namespace mapping, no resource modifiers. Gathered in the snapshot's verification pass when the
 * restore opens the source itself (gatherStoredTexts), else in a pass of their own (storedTexts).
 */
import type { PlainManifest } from "../archive/manifest.ts";
import type { ArchiveEntry } from "../archive/reader.ts";
import { textDigest } from "../objects/live.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import { resourceSelected } from "../objects/filters.ts";
import type { EntryVisitor, VerifiedSnapshot } from "../source/verified.ts";
import type { RestoreOptions } from "./options.ts";

export type StoredTexts = Map<string, Map<string, string>>;

type TextOptions = Pick<
  RestoreOptions,
  "filters" | "namespaceMap" | "namespacePrefix" | "modifiers" | "restoreStatus"
>;

/** What gathering found: `texts` undefined when targets are not the archived objects as they are. */
export interface Gathered {
  texts: StoredTexts | undefined;
}

/**
 * The most objects whose digests are held (about 250 bytes each): past it the live read parses
 * every object, as it does with mapping or modifiers, so the plan's memory stays bounded by the
 * snapshot's size no more than it did before digests (at 300,000 objects they took a restore's
 * peak RSS from 228 to 375 MiB).
 */
export const MAX_STORED_TEXTS = 100_000;

/** Undefined when targets are not the archived objects as they are (mapped, or modified), or too many. */
export async function storedTexts(
  snapshot: VerifiedSnapshot,
  resources: ReadonlySet<string>,
  options: TextOptions,
): Promise<StoredTexts | undefined> {
  const objects = snapshot.manifest.resources
    .filter((r) => resources.has(`${r.plural}.${r.group}`))
    .reduce((n, r) => n + r.count, 0);
  const add = objects > MAX_STORED_TEXTS ? undefined : collector(resources, options);
  if (!add) return undefined;
  for await (const entry of snapshot.entries()) add.visit(entry);
  return add.texts;
}

/**
 * The same texts, gathered by the verification pass of the source a restore opens (one pass over
 * every entry fewer): `gathered` is filled in when that pass starts, and holds once it succeeded.
 */
export function gatherStoredTexts(options: TextOptions, gathered: Gathered): EntryVisitor {
  return (manifest: PlainManifest) => {
    const selected = manifest.resources.filter((r) => resourceSelected(options.filters, r.group, r.plural));
    const keys = selected.map((r) => `${r.plural}.${r.group}`);
    const objects = selected.reduce((n, r) => n + r.count, 0);
    const add = objects > MAX_STORED_TEXTS ? undefined : collector(new Set(keys), options);
    gathered.texts = add?.texts;
    return add?.visit;
  };
}

function collector(
  resources: ReadonlySet<string>,
  options: TextOptions,
): { texts: StoredTexts; visit: (entry: ArchiveEntry) => void } | undefined {
  if (options.modifiers || options.namespaceMap.size > 0 || options.namespacePrefix) return undefined;
  const filter = new EntryFilter(options.filters, resources);
  const texts: StoredTexts = new Map();
  const visit = (entry: ArchiveEntry) => {
    if (entry.kind !== "object" || !filter.selectsRef(entry.ref)) return;
    const resource = `${entry.ref.plural}.${entry.ref.group}`;
    let map = texts.get(resource);
    if (!map) texts.set(resource, (map = new Map()));
    map.set(`${entry.ref.namespace ?? ""}/${entry.ref.name}`, textDigest(entry.body, options.restoreStatus));
  };
  return { texts, visit };
}
