/**
 * What `restore --sync` deletes, as pure functions: the live objects of the planned resources that
 * the source state does not have, only where both the restore's filters and the source's own (the
 * filters its snapshot or recorder was run with: what it covers) select, ordered so dependents go
 * before their owners. Modelled on Argo CD's prune and Flux's garbage collection: the scope is
 * explicit, and whatever the source could not have seen is never deleted.
 */
import { SourceRefusedError } from "../errors.ts";
import { isJsonObject, type JsonObject } from "../json/json.ts";
import { namespaceSelected, resourceSelected, type Filters } from "../objects/filters.ts";
import { parseSelector } from "../objects/selector.ts";
import type { NamespaceMapping } from "./options.ts";
import { ownerDepths } from "./order.ts";
import type { ResourcePlan } from "./types.ts";
import type { LiveObject } from "../objects/live.ts";

/** One live object a sync deletes. */
export interface PruneItem {
  resource: ResourcePlan;
  namespace?: string;
  name: string;
  /** The uid read: the delete is conditional on it, so an object recreated since is left alone. */
  uid: string;
  owners: readonly string[];
}

export interface CrdPrune {
  name: string;
  uid: string;
}

export interface PrunePlan {
  /** Objects to delete, phase by phase (each phase's deletes run at once): see deletePhases. */
  phases: PruneItem[][];
  count: number;
  /** CRDs to delete (--sync-crds), after every object. */
  crds: CrdPrune[];
  /** Resources of which the sync deletes nothing, and why. */
  uncovered: { resource: string; reason: string }[];
}

type Labels = Record<string, string>;

const EVERYTHING: Filters = {
  includeGroups: [],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};

const LISTS = [
  "includeGroups",
  "excludeGroups",
  "includeResources",
  "excludeResources",
  "includeNamespaces",
  "excludeNamespaces",
] as const;

/**
 * The filters a source was taken with, as its manifest records them (`options.filters`); a
 * manifest that records none (written by hand, or before filters were recorded) took everything.
 * A malformed record refuses the source: a sync cannot tell what it covers.
 */
export function recordedFilters(options: JsonObject, snapshotId: string): Filters {
  const f = options["filters"];
  if (f === undefined || f === null) return EVERYTHING;
  const refuse = (field: string) =>
    new SourceRefusedError(
      { snapshot: snapshotId },
      `snapshot ${snapshotId}: its manifest's options.filters${field} is not what crd-backup records, so a sync cannot tell which objects it covers`,
      { id: snapshotId },
    );
  if (!isJsonObject(f)) throw refuse("");
  const filters: Filters = { ...EVERYTHING };
  for (const key of LISTS) {
    const v = f[key];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) throw refuse(`.${key}`);
    filters[key] = v as string[];
  }
  const selector = f["selector"];
  if (typeof selector === "string") filters.selector = selector;
  else if (selector !== undefined && selector !== null) throw refuse(".selector");
  return filters;
}

/**
 * The source namespaces whose objects a restore puts into `target` (the inverse of
 * options.ts targetNamespace): those --namespace-map sends there, and the one the prefix (or no
 * mapping) sends there when the map does not name it.
 */
export function sourceNamespaces(mapping: NamespaceMapping, target: string): string[] {
  const found: string[] = [];
  for (const [from, to] of mapping.namespaceMap) if (to === target) found.push(from);
  const prefix = mapping.namespacePrefix ?? "";
  if (target.startsWith(prefix) && target.length > prefix.length) {
    const source = target.slice(prefix.length);
    if (!mapping.namespaceMap.has(source)) found.push(source);
  }
  return found;
}

/** Where a sync may delete: what the restore's filters select and the source covers. */
export class SyncScope {
  readonly #restore: Filters;
  readonly #source: Filters;
  readonly #mapping: NamespaceMapping;
  readonly #selectors: ((labels: Labels) => boolean)[];
  readonly #namespaces = new Map<string, boolean>();

  constructor(restore: Filters, source: Filters, mapping: NamespaceMapping) {
    this.#restore = restore;
    this.#source = source;
    this.#mapping = mapping;
    this.#selectors = [restore.selector, source.selector].flatMap((s) => (s ? [parseSelector(s)] : []));
  }

  /** Whether either side has a label selector (only then are live labels read). */
  get readsLabels(): boolean {
    return this.#selectors.length > 0;
  }

  /** Live labels both selectors match (a source taken with a selector never saw the others). */
  selectsLabels(labels: Labels): boolean {
    return this.#selectors.every((s) => s(labels));
  }

  /** A resource the source's filters took (the restore's are applied by planning already). */
  coversResource(group: string, plural: string): boolean {
    return resourceSelected(this.#source, group, plural) && resourceSelected(this.#restore, group, plural);
  }

  /** A target namespace into which some source namespace that both filters select is restored. */
  coversNamespace(target: string): boolean {
    let covered = this.#namespaces.get(target);
    if (covered === undefined) {
      covered = sourceNamespaces(this.#mapping, target).some(
        (s) => namespaceSelected(this.#restore, s) && namespaceSelected(this.#source, s),
      );
      this.#namespaces.set(target, covered);
    }
    return covered;
  }

  /**
   * Why whole CRDs cannot be synced, if they cannot: deleting a CRD deletes its objects in every
   * namespace, so both sides must select every namespace and every label.
   */
  partial(): string | undefined {
    for (const [side, f] of [
      ["the restore", this.#restore],
      ["the source", this.#source],
    ] as const) {
      if (f.includeNamespaces.length || f.excludeNamespaces.length || f.selector)
        return `${side} selects some namespaces or labels only`;
    }
    if (this.#mapping.namespaceMap.size > 0 || this.#mapping.namespacePrefix)
      return "the restore maps namespaces";
    return undefined;
  }
}

/**
 * The live objects of `resources` to delete: in scope, selected by labels, and not in the source
 * (`inSource`: the plan noted the live objects the source has, no key built per object). `errors`:
 * resources whose listing failed in the source (its manifest says so), of which nothing is deleted.
 */
export function pruneCandidates(
  resources: Iterable<ResourcePlan>,
  scope: SyncScope,
  inSource: (live: LiveObject) => boolean,
  errors: (resource: string) => string | undefined,
): Pick<PrunePlan, "uncovered"> & { items: PruneItem[] } {
  const items: PruneItem[] = [];
  const uncovered: PrunePlan["uncovered"] = [];
  for (const r of resources) {
    if (r.live.size === 0 || !scope.coversResource(r.group, r.plural)) continue;
    const error = errors(r.key);
    if (error) {
      uncovered.push({ resource: r.key, reason: `the source could not list it (${error})` });
      continue;
    }
    for (const [key, live] of r.live) {
      if (live.unselected || inSource(live)) continue;
      const slash = key.indexOf("/");
      const namespace = slash > 0 ? key.slice(0, slash) : undefined;
      const name = key.slice(slash + 1);
      if (namespace !== undefined && !scope.coversNamespace(namespace)) continue;
      items.push({ resource: r, namespace, name, uid: live.uid, owners: live.owners ?? [] });
    }
  }
  return { items, uncovered };
}

/**
 * The order of deletes, the restore order (restore/order.ts) backwards: namespaced objects before
 * cluster-scoped ones (which may own them), and within each scope the deepest dependents first,
 * so no owner among the deletes goes before an object that names it.
 */
export function deletePhases(items: readonly PruneItem[]): PruneItem[][] {
  const byUid = new Map<string, number>();
  const dependents = new Map<number, readonly string[]>();
  items.forEach((item, i) => {
    byUid.set(item.uid, i);
    if (item.owners.length > 0) dependents.set(i, item.owners);
  });
  const depths = ownerDepths(dependents, byUid);
  const phases = new Map<string, PruneItem[]>();
  items.forEach((item, i) => {
    const key = `${item.resource.namespaced ? 0 : 1}:${depths.get(i) ?? 0}`;
    const phase = phases.get(key) ?? [];
    phase.push(item);
    phases.set(key, phase);
  });
  const rank = (key: string) => {
    const [scope, depth] = key.split(":").map(Number);
    return [scope!, -depth!] as const;
  };
  return [...phases.keys()]
    .sort((a, b) => {
      const [sa, da] = rank(a);
      const [sb, db] = rank(b);
      return sa - sb || da - db;
    })
    .map((k) => phases.get(k)!);
}
