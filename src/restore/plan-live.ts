/**
 * The live half of a restore plan: per selected resource, its live CRD (versions, scope, conflict)
 * and its live objects, a few resources read at once. Planning's pass over the archive runs while
 * these reads do (restore/plan-pass.ts): it waits only for the resource of the entry in hand, so the
 * archive is decoded while the API server encodes pages.
 */
import type { ManifestResource, PlainManifest } from "../archive/manifest.ts";
import { mapConcurrent } from "../concurrency.ts";
import { CrdBackupError } from "../errors.ts";
import type { JsonObject } from "../json/json.ts";
import type { KubeClient } from "../kube/client.ts";
import type { EntryModifiers } from "../modifiers/entries.ts";
import { liveCrd, liveObjects } from "../objects/live.ts";
import { aggregatedBy } from "./guards.ts";
import { policyFor, type RestoreOptions } from "./options.ts";
import { recordedFilters, SyncScope } from "./prune.ts";
import type { Gathered, StoredTexts } from "./stored-texts.ts";
import { resourceSelected } from "../objects/filters.ts";
import type { ResourcePlan } from "./types.ts";
import { targetVersions, versionMapProblem, versionVerdict, type VersionMapping } from "./versions.ts";

export const resourceKeyOf = (plural: string, group: string) => `${plural}.${group}`;

/** Resources whose live objects are read at once while planning. */
const LIVE_READS = 4;

async function planResource(
  client: KubeClient,
  r: ManifestResource,
  options: RestoreOptions,
  modifiers: EntryModifiers | undefined,
  scope: SyncScope | undefined,
  texts: Map<string, string> | "keep" | undefined,
  liveCrds: Map<string, JsonObject>,
): Promise<ResourcePlan> {
  const plan: ResourcePlan = {
    key: resourceKeyOf(r.plural, r.group),
    group: r.group,
    version: r.version,
    archivedVersion: r.version,
    plural: r.plural,
    kind: r.kind,
    namespaced: r.namespaced,
    // a sync writes whatever differs
    policy: options.sync ? "update" : policyFor(options, r.plural, r.group),
    crdLive: false,
    statusSubresource: false,
    live: new Map(),
  };
  const map = options.versionMap?.get(plan.key);
  const live = await liveCrd(client, plan.key, options.signal);
  if (!live) {
    if (map)
      throw mapUsage(
        plan.key,
        map,
        versionMapProblem(r.version, { source: "snapshot", servedVersions: [] }, map),
      );
    const by = await aggregatedBy(client, r.group, r.version, options.signal);
    if (by) plan.aggregatedBy = by;
    return plan;
  }
  liveCrds.set(plan.key, live.raw);
  // the snapshot's own CRD, read later, replaces this: its schema is the stored version's
  modifiers?.noteCrd(plan.key, live.raw);
  plan.crdLive = true;
  const target = targetVersions(live.raw, "live");
  const problem = map && versionMapProblem(r.version, target, map);
  if (map && problem) throw mapUsage(plan.key, map, problem);
  plan.versions = { target, verdict: versionVerdict(r.version, target, map) };
  if (plan.versions.verdict.kind === "mapped") plan.version = plan.versions.verdict.to;
  plan.statusSubresource = live.info.statusVersions.includes(plan.version);
  if (plan.versions.verdict.kind === "not-served") {
    plan.conflict = `the live CRD ${plan.key} does not serve ${r.version}, the version the snapshot stored (it serves ${live.info.servedVersions.join(", ") || "nothing"})`;
  } else if (live.info.namespaced !== r.namespaced) {
    plan.conflict = `the live CRD ${plan.key} is ${live.info.namespaced ? "Namespaced" : "Cluster"}-scoped, the snapshot's was not`;
  } else {
    plan.live = await liveObjects(client, r.group, plan.version, r.plural, {
      withStatus: options.restoreStatus,
      signal: options.signal,
      ...(scope ? { prune: scope.readsLabels ? { selects: (l) => scope.selectsLabels(l) } : {} } : {}),
      ...(texts === "keep" ? { keepText: true } : texts ? { storedText: (key) => texts.get(key) } : {}),
    });
  }
  return plan;
}

export function mapUsage(key: string, map: VersionMapping, problem: string | undefined): CrdBackupError {
  return new CrdBackupError(
    "USAGE",
    `--version-map ${key}=${map.from}:${map.to}: ${problem ?? "cannot be used"}`,
  );
}

/** The live reads of a plan, started at once; each resource's plan awaited where it is needed. */
export class LiveReads {
  /** The live CRDs as read: the CRD plans compare against these, not a second GET each. */
  readonly crds = new Map<string, JsonObject>();
  readonly #ready = new Map<string, PromiseWithResolvers<ResourcePlan>>();
  readonly #all: Promise<ResourcePlan[]>;

  /**
   * `texts`: the source's text digests (objects whose text is the source's are not parsed), or
   * "keep": every live object's own kept, for a plan that compares them itself (plan-pass.ts).
   * `ready`: settles when a resource's texts are whole, its read waiting for it (stored-texts.ts).
   */
  constructor(
    client: KubeClient,
    selected: readonly ManifestResource[],
    options: RestoreOptions,
    modifiers: EntryModifiers | undefined,
    scope: SyncScope | undefined,
    texts: StoredTexts | "keep" | undefined,
    ready?: (resource: string) => Promise<void>,
  ) {
    for (const r of selected) {
      const ready = Promise.withResolvers<ResourcePlan>();
      ready.promise.catch(() => undefined); // a failure surfaces through all(), awaited or not
      this.#ready.set(resourceKeyOf(r.plural, r.group), ready);
    }
    // a few resources read at once: the API server encodes one page while this digests another
    this.#all = mapConcurrent(selected, LIVE_READS, async (r) => {
      const key = resourceKeyOf(r.plural, r.group);
      await ready?.(key);
      const stored = texts === "keep" ? texts : texts && (texts.get(key) ?? new Map<string, string>());
      const plan = await planResource(client, r, options, modifiers, scope, stored, this.crds);
      this.#ready.get(key)!.resolve(plan);
      return plan;
    });
    // one failed read fails every wait, also on resources it never started
    this.#all.catch((e: unknown) => {
      for (const ready of this.#ready.values()) ready.reject(e);
    });
  }

  /** The plan of one selected resource, once its CRD and objects are read. */
  resource(key: string): Promise<ResourcePlan> {
    return this.#ready.get(key)!.promise;
  }

  /** Every resource's plan, in the manifest's order. */
  all(): Promise<ResourcePlan[]> {
    return this.#all;
  }
}

/** The manifest's resources the restore's filters select, in the manifest's order. */
export function selectedResources(manifest: PlainManifest, options: Pick<RestoreOptions, "filters">) {
  return manifest.resources.filter((r) => resourceSelected(options.filters, r.group, r.plural));
}

/** Where a sync may delete (restore/prune.ts); undefined when the restore is not a sync. */
export function syncScope(manifest: PlainManifest, options: RestoreOptions): SyncScope | undefined {
  if (!options.sync) return undefined;
  const mapping = { namespaceMap: options.namespaceMap, namespacePrefix: options.namespacePrefix };
  return new SyncScope(options.filters, recordedFilters(manifest.options, manifest.snapshotId), mapping);
}

/**
 * The live reads of a restore started from its source's verification pass, each resource's as
 * soon as the pass has gathered its texts: the API server encodes the pages while the pass goes
 * on, instead of after it. Only where the plan would start the same reads (texts gathered, no
 * --version-map); undefined otherwise, and the plan starts them itself.
 */
export function earlyLiveReads(
  client: KubeClient,
  manifest: PlainManifest,
  options: RestoreOptions,
  gathered: Gathered,
): LiveReads | undefined {
  if (!gathered.texts || !gathered.ready || options.modifiers || (options.versionMap?.size ?? 0) > 0)
    return undefined;
  let scope: SyncScope | undefined;
  try {
    scope = syncScope(manifest, options);
  } catch {
    return undefined; // the plan refuses the source, in its turn
  }
  const selected = selectedResources(manifest, options);
  return new LiveReads(client, selected, options, undefined, scope, gathered.texts, gathered.ready);
}
