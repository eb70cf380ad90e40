/**
 * The source's objects as text digests (objects/live.ts textDigest), per resource and
 * `namespace/name`, read in one pass over the verified archive before the live objects are: the
 * live read then parses only the objects whose text differs. Only when an object's key and text in
 * the target are its archived ones: no namespace mapping, no resource modifiers.
 */
import { textDigest } from "../objects/live.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import type { RestoreOptions } from "./options.ts";

export type StoredTexts = Map<string, Map<string, string>>;

/** Undefined when targets are not the archived objects as they are (mapped, or modified). */
export async function storedTexts(
  snapshot: VerifiedSnapshot,
  resources: ReadonlySet<string>,
  options: Pick<
    RestoreOptions,
    "filters" | "namespaceMap" | "namespacePrefix" | "modifiers" | "restoreStatus"
  >,
): Promise<StoredTexts | undefined> {
  if (options.modifiers || options.namespaceMap.size > 0 || options.namespacePrefix) return undefined;
  const filter = new EntryFilter(options.filters, resources);
  const texts: StoredTexts = new Map();
  for await (const entry of snapshot.entries()) {
    if (entry.kind !== "object" || !filter.selectsRef(entry.ref)) continue;
    const resource = `${entry.ref.plural}.${entry.ref.group}`;
    let map = texts.get(resource);
    if (!map) texts.set(resource, (map = new Map()));
    map.set(`${entry.ref.namespace ?? ""}/${entry.ref.name}`, textDigest(entry.body, options.restoreStatus));
  }
  return texts;
}
