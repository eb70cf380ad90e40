/**
 * Naming a resource as kubectl takes it (`plural.group`, `plural`, `kind`, `kind.group`, any
 * letter case), resolved against the CRDs the location's snapshots archived: an unknown name or an
 * ambiguous one is a usage error, the latter listing every candidate.
 */
import type { ManifestResource } from "../archive/manifest.ts";
import { openManifest } from "../crypto/manifest.ts";
import type { Identities } from "../crypto/keys.ts";
import { CrdBackupError } from "../errors.ts";
import type { StoredSnapshot } from "../storage/snapshots.ts";

/** A custom resource as history and changes name it. */
export interface ResourceInfo {
  group: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** The version its objects were archived at (the newest snapshot's). */
  version: string;
}

/** `plural.group`: how the journal, gaps and filters name a resource. */
export const resourceName = (r: Pick<ResourceInfo, "group" | "plural">) => `${r.plural}.${r.group}`;

/** The error for a name more than one archived CRD answers to; `candidates` as `plural.group`. */
export class AmbiguousResourceError extends CrdBackupError {
  readonly candidates: string[];
  constructor(name: string, candidates: string[]) {
    super(
      "USAGE",
      `resource ${JSON.stringify(name)} is ambiguous: it may be ${candidates.join(", ")}; say plural.group`,
      { name },
    );
    this.name = "AmbiguousResourceError";
    this.candidates = candidates;
  }
}

/** The resources the snapshots archived, newest snapshot first wins; encrypted ones opened with `keys`. */
export async function archivedResources(
  snapshots: StoredSnapshot[],
  keys: Identities | undefined,
): Promise<ResourceInfo[]> {
  const byName = new Map<string, ResourceInfo>();
  for (const s of [...snapshots].reverse()) {
    const manifest = await openManifest(s.manifest, keys);
    for (const r of manifest.resources as ManifestResource[]) {
      const name = resourceName(r);
      if (!byName.has(name))
        byName.set(name, {
          group: r.group,
          plural: r.plural,
          kind: r.kind,
          namespaced: r.namespaced,
          version: r.version,
        });
    }
  }
  return [...byName.values()];
}

/** The one resource `name` means among `known`. */
export function resolveResource(known: ResourceInfo[], name: string): ResourceInfo {
  const n = name.toLowerCase();
  const matches = known.filter((r) => {
    const plural = r.plural.toLowerCase();
    const kind = r.kind.toLowerCase();
    const group = r.group.toLowerCase();
    return n === plural || n === kind || n === `${plural}.${group}` || n === `${kind}.${group}`;
  });
  // an exact plural.group is never ambiguous, whatever else shares the plural or kind
  const exact = matches.filter((r) => resourceName(r).toLowerCase() === n);
  const found = exact.length === 1 ? exact : matches;
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new AmbiguousResourceError(name, found.map(resourceName).sort());
  const some = known.map(resourceName).sort();
  throw new CrdBackupError(
    "USAGE",
    `unknown resource ${JSON.stringify(name)}: no archived CRD serves it (archived: ${some.slice(0, 10).join(", ") || "none"}${some.length > 10 ? `, and ${some.length - 10} more` : ""})`,
    { name },
  );
}

/** `<resource>/<name>` as history and the short restore take it. */
export function parseObjectArg(arg: string): { resource: string; name: string } {
  const slash = arg.indexOf("/");
  const resource = arg.slice(0, slash);
  const name = arg.slice(slash + 1);
  if (slash <= 0 || name === "" || name.includes("/"))
    throw new CrdBackupError(
      "USAGE",
      `${JSON.stringify(arg)}: name an object as <resource>/<name>, e.g. widgets.example.com/w1`,
    );
  return { resource, name };
}
