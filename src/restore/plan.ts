import { mapConcurrent } from "../concurrency.ts";
import type { KubeClient } from "../kube/client.ts";
import { EntryModifiers } from "../modifiers/entries.ts";
import { getJson, liveCrd } from "../objects/live.ts";
import type { RestoreOptions } from "./options.ts";
import { ownerDepths } from "./order.ts";
import type { Decisions } from "./decisions.ts";
import type { Identities } from "./item.ts";
import { refuseAggregated, refuseBuiltinResources, refuseResourcesWithoutCrd } from "./guards.ts";
import type { CrdPlan, NamespacePlan, ResourcePlan } from "./types.ts";
import type { PrunePlan } from "./prune.ts";
import { planPrune } from "./plan-prune.ts";
import { storedTexts, type Gathered } from "./stored-texts.ts";
import { LiveReads, mapUsage, resourceKeyOf, selectedResources, syncScope } from "./plan-live.ts";
import type { KeptEntry } from "./kept-entries.ts";
import { PlanPass, type InPassPlan } from "./plan-pass.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";

export interface RestorePlan {
  snapshot: VerifiedSnapshot;
  resources: Map<string, ResourcePlan>;
  crds: CrdPlan[];
  namespaces: NamespacePlan[];
  /** Per object, by its position among the archive's object entries. */
  objects: Decisions;
  /** Who each object entry is in the target, asked again when writing. */
  identities: Identities;
  /** Owners in the restore: source uid -> the object's position. */
  owners: Map<string, number>;
  /** Source uids some object names as owner: only their new uids need remembering. */
  owned: Set<string>;
  /** Owners that are already in the cluster: source uid -> live uid. */
  liveOwners: Map<string, string>;
  /** Objects that exist while --existing fail holds for their resource: the count and the first. */
  refused: { count: number; first?: string };
  /** With --sync: what to delete, after everything is written. */
  prune?: PrunePlan;
  /** The decided object entries in the archive's order, when within budget: writing reads these, not the archive. */
  kept?: readonly KeptEntry[];
}

/** Target namespaces looked up at once. */
const NAMESPACE_READS = 8;

/**
 * Builds the plan for a verified snapshot (nothing is written before the whole archive checks
 * out): read the live state of every resource it holds, then decide per CRD, namespace and object
 * what the restore will do and in which phase. A snapshot that lists anything but custom
 * resources is refused here, whole (restore/guards.ts), so nothing of it is ever written.
 * `planned`: the pass that planned inside the source's verification pass (plan-pass.ts
 * inPassPlan), when it went through; otherwise planning reads the archive once more.
 */
export async function buildPlan(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  options: RestoreOptions,
  gathered?: Gathered,
  early?: LiveReads,
  planned?: InPassPlan,
): Promise<RestorePlan> {
  refuseBuiltinResources(snapshot.id, snapshot.manifest.resources);
  // the same selection and scope as earlyLiveReads derives, when it started the reads
  const selected = selectedResources(snapshot.manifest, options);
  const modifiers = options.modifiers ? new EntryModifiers(options.modifiers) : undefined;
  const scope = syncScope(snapshot.manifest, options);
  const keys = new Set(selected.map((r) => resourceKeyOf(r.plural, r.group)));
  for (const [key, map] of options.versionMap ?? [])
    if (!keys.has(key))
      throw mapUsage(key, map, `the restore has no resource ${key} (from this snapshot, with these filters)`);
  let pass = await planned?.pass();
  if (!pass) {
    const texts = gathered ? gathered.texts : await storedTexts(client, snapshot, keys, options);
    // reads that kept their texts (a pass inside the verification that did not go through) compare them here
    const reads =
      planned?.reads ?? early ?? new LiveReads(client, selected, options, modifiers, scope, texts);
    pass = new PlanPass(reads, keys, options, modifiers, scope);
    for await (const entry of snapshot.entries()) {
      const waited = pass.visit(entry);
      if (waited) await waited;
    }
  }
  await pass.resolve(client, () => objectEntries(snapshot));
  const { resources, objects, identities, refused, archivedCrds, owned, dependents } = pass;

  // in the manifest's order again, as every later step reads them
  const all = await pass.reads.all();
  resources.clear();
  for (const resource of all) {
    resources.set(resource.key, resource);
    pass.planCrdOf(resource);
  }
  refuseAggregated(snapshot.id, [...resources.values()]);
  await refuseResourcesWithoutCrd(
    snapshot.id,
    snapshot.manifest.resources,
    archivedCrds,
    async (name) =>
      resources.get(name)?.crdLive ?? (await liveCrd(client, name, options.signal)) !== undefined,
  );

  // a second pass only when something has owners: which owners are in the restore, and where
  const owners = new Map<string, number>();
  const liveOwners = new Map<string, string>();
  const kept = pass.keeping.entries();
  if (owned.size > 0) {
    for await (const { ordinal, entry } of kept ?? objectEntries(snapshot)) {
      const uid = entry.record.uid;
      const decision = uid !== undefined && owned.has(uid) ? objects.get(ordinal) : undefined;
      if (!decision) continue;
      owners.set(uid!, ordinal);
      if (decision.liveUid) liveOwners.set(uid!, decision.liveUid);
    }
    objects.setDepths(ownerDepths(dependents, owners));
  }

  // a few at once: a round trip each, in name order
  const namespaces: NamespacePlan[] = await mapConcurrent(
    [...pass.targets].sort(),
    NAMESPACE_READS,
    async ([name, source]) => {
      const exists = (await getJson(client, `/api/v1/namespaces/${name}`, options.signal)) !== undefined;
      return { name, source, exists, captured: pass.captured.get(source) };
    },
  );
  const prune =
    scope &&
    (await planPrune(client, {
      resources: resources.values(),
      manifestResources: snapshot.manifest.resources,
      scope,
      inSource: pass.inSource,
      archivedCrds,
      crds: options.sync?.crds ?? false,
      signal: options.signal,
    }));
  const plan: RestorePlan = {
    snapshot,
    resources,
    crds: pass.crds,
    namespaces,
    objects,
    identities,
    owners,
    owned,
    liveOwners,
    refused,
    ...(prune ? { prune } : {}),
    ...(kept ? { kept } : {}),
  };
  options.onPlan?.(plan);
  return plan;
}

/** Every object entry of the archive with its ordinal: a pass for a plan that kept none (restore/kept-entries.ts). */
export async function* objectEntries(snapshot: VerifiedSnapshot): AsyncGenerator<KeptEntry> {
  let ordinal = -1;
  for await (const entry of snapshot.entries())
    if (entry.kind === "object") yield { ordinal: ++ordinal, entry };
}
