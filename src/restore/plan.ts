import { diffJson } from "../json/diff.ts";
import { mapConcurrent } from "../concurrency.ts";
import type { KubeClient } from "../kube/client.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import { objectMembers, type Member } from "../json/scan.ts";
import { EntryModifiers } from "../modifiers/entries.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import { getJson, liveCrd, digestOf } from "../objects/live.ts";
import { canonicalJson } from "../json/canonical.ts";
import { targetNamespace, type RestoreOptions } from "./options.ts";
import { ownerDepths } from "./order.ts";
import { Decisions, type Decision } from "./decisions.ts";
import { Identities, patchedObject, type ItemIdentity } from "./item.ts";
import {
  conversionWebhook,
  refuseAggregated,
  refuseBuiltinResources,
  refuseResourcesWithoutCrd,
} from "./guards.ts";
import type { CrdPlan, NamespacePlan, ResourcePlan } from "./types.ts";
import { objectKey, type PrunePlan } from "./prune.ts";
import { planPrune } from "./plan-prune.ts";
import { storedTexts, type Gathered } from "./stored-texts.ts";
import { LiveReads, mapUsage, resourceKeyOf, selectedResources, syncScope } from "./plan-live.ts";
import { KeptEntries, type KeptEntry } from "./kept-entries.ts";
import { mappedApiVersion, targetVersions, versionVerdict } from "./versions.ts";
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

/** A CRD the restore creates from the snapshot: the verdict on its own archived versions. */
function noteArchivedCrd(resource: ResourcePlan | undefined, body: JsonObject): void {
  if (!resource || resource.crdLive || resource.aggregatedBy) return;
  const target = targetVersions(body, "snapshot");
  resource.versions = { target, verdict: versionVerdict(resource.archivedVersion, target) };
  if (resource.versions.verdict.kind === "not-served")
    resource.conflict = `the snapshot's CRD ${resource.key} does not serve ${resource.archivedVersion}, the version its objects were stored at`;
}

/** The part of a CRD a restore would write: everything but server-owned metadata and status. */
function crdSpecForm(crd: JsonObject): JsonObject {
  const md = isJsonObject(crd["metadata"]) ? crd["metadata"] : {};
  return { labels: md["labels"] ?? {}, annotations: md["annotations"] ?? {}, spec: crd["spec"] ?? {} };
}

/**
 * Builds the plan for a verified snapshot (nothing is written before the whole archive checks
 * out): read the live state of every resource it holds, then decide per CRD, namespace and object
 * what the restore will do and in which phase. A snapshot that lists anything but custom
 * resources is refused here, whole (restore/guards.ts), so nothing of it is ever written.
 */
export async function buildPlan(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  options: RestoreOptions,
  gathered?: Gathered,
  early?: LiveReads,
): Promise<RestorePlan> {
  refuseBuiltinResources(snapshot.id, snapshot.manifest.resources);
  // the same selection and scope as earlyLiveReads derives, when it started the reads
  const selected = selectedResources(snapshot.manifest, options);
  const modifiers = options.modifiers ? new EntryModifiers(options.modifiers) : undefined;
  const mapping = { namespaceMap: options.namespaceMap, namespacePrefix: options.namespacePrefix };
  const scope = syncScope(snapshot.manifest, options);
  const keys = new Set(selected.map((r) => resourceKeyOf(r.plural, r.group)));
  for (const [key, map] of options.versionMap ?? [])
    if (!keys.has(key))
      throw mapUsage(key, map, `the restore has no resource ${key} (from this snapshot, with these filters)`);
  const texts = gathered ? gathered.texts : await storedTexts(client, snapshot, keys, options);
  const reads = early ?? new LiveReads(client, selected, options, modifiers, scope, texts);
  // filled as the pass below reaches each resource (the reads run meanwhile), whole after it
  const resources = new Map<string, ResourcePlan>();
  const identities = new Identities(resources, mapping, modifiers);
  const filter = new EntryFilter(options.filters, keys);
  // the archive's CRDs, planned once their resource is read: slots keep the archive's order
  const crds: CrdPlan[] = [];
  const crdBodies = new Map<string, { body: JsonObject; slot: number }>();
  let crdSlots = 0;
  const planCrdOf = (resource: ResourcePlan) => {
    const archived = crdBodies.get(resource.key);
    if (!archived) return;
    crdBodies.delete(resource.key);
    modifiers?.noteCrd(resource.key, archived.body);
    noteArchivedCrd(resource, archived.body);
    crds[archived.slot] = planCrd(resource.key, archived.body, reads.crds.get(resource.key));
  };
  /** The entry's resource, read: its archived CRD planned before its first object is decided. */
  const resourceOf = async (key: string) => {
    if (resources.has(key)) return;
    const resource = await reads.resource(key);
    resources.set(key, resource);
    planCrdOf(resource);
  };
  const objects = new Decisions();
  const keeping = new KeptEntries();
  const captured = new Map<string, JsonObject>();
  const targets = new Map<string, string>();
  const dependents = new Map<number, readonly string[]>();
  const owned = new Set<string>();
  const refused: RestorePlan["refused"] = { count: 0 };
  const archivedCrds = new Set<string>();
  // a sync's note of the source's objects that are live: a key each (the difference is deleted)
  const inSource = new Set<string>();
  const noteSource = (resource: string, namespace: string | undefined, name: string) => {
    const r = resources.get(resource);
    if (scope && r?.live.has(`${namespace ?? ""}/${name}`))
      inSource.add(objectKey(resource, namespace, name));
  };
  let ordinal = -1;
  for await (const entry of snapshot.entries()) {
    if (entry.kind === "crd") {
      archivedCrds.add(entry.record.name);
      if (!keys.has(entry.record.name)) continue;
      const body = parseJson(entry.body.toString("utf8")) as JsonObject;
      crdBodies.set(entry.record.name, { body, slot: crdSlots++ });
    } else if (entry.kind === "namespace") {
      captured.set(entry.record.name, parseJson(entry.body.toString("utf8")) as JsonObject);
    } else if (entry.kind === "object") {
      ordinal++;
      if (!filter.selectsRef(entry.ref)) continue;
      await resourceOf(`${entry.ref.plural}.${entry.ref.group}`);
      // planning reads only what it needs: the top-level keys, and labels when a selector asks
      const { members } = objectMembers(entry.body, 0);
      if (!filter.selectsLabels(entry.body, members)) {
        // not restored, but the source has it: never deleted
        const ns = entry.ref.namespace;
        noteSource(
          `${entry.ref.plural}.${entry.ref.group}`,
          ns === undefined ? undefined : targetNamespace(mapping, ns).name,
          entry.ref.name,
        );
        continue;
      }
      const item = identities.planned(entry);
      if (!item) continue;
      noteSource(item.resource.key, item.namespace, item.name);
      const decision = decide(item, entry.body, members, options);
      objects.set(ordinal, decision);
      keeping.add(ordinal, entry, decision.action, modifiers !== undefined);
      if (decision.action === "conflict" && item.resource.policy === "fail" && !item.resource.conflict) {
        refused.count++;
        refused.first ??= `${item.resource.key} ${item.namespace ? `${item.namespace}/` : ""}${item.name}`;
      }
      if (item.ownerUids.length > 0) {
        dependents.set(ordinal, item.ownerUids);
        for (const uid of item.ownerUids) owned.add(uid);
      }
      if (item.namespace && (decision.action === "create" || decision.action === "update"))
        targets.set(item.namespace, item.sourceNamespace!);
    }
  }

  // in the manifest's order again, as every later step reads them
  const planned = await reads.all();
  resources.clear();
  for (const resource of planned) {
    resources.set(resource.key, resource);
    planCrdOf(resource);
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
  const kept = keeping.entries();
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
    [...targets].sort(),
    NAMESPACE_READS,
    async ([name, source]) => {
      const exists = (await getJson(client, `/api/v1/namespaces/${name}`, options.signal)) !== undefined;
      return { name, source, exists, captured: captured.get(source) };
    },
  );
  const prune =
    scope &&
    (await planPrune(client, {
      resources: resources.values(),
      manifestResources: snapshot.manifest.resources,
      scope,
      inSource,
      archivedCrds,
      crds: options.sync?.crds ?? false,
      signal: options.signal,
    }));
  const plan: RestorePlan = {
    snapshot,
    resources,
    crds,
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

/** `live`: the CRD as planning read it (undefined: not served then). */
function planCrd(name: string, body: JsonObject, live: JsonObject | undefined): CrdPlan {
  if (!live) {
    const webhook = conversionWebhook(body);
    return { name, action: "create", ...(webhook ? { webhook } : {}) };
  }
  if (canonicalJson(crdSpecForm(body)) === canonicalJson(crdSpecForm(live)))
    return { name, action: "unchanged" };
  return { name, action: "differs", diff: diffJson(crdSpecForm(live), crdSpecForm(body)) };
}

/**
 * What to do with one object: from its identity, the live state and the policies. `members`: the
 * stored body's top-level members (planning scans them anyway), for whether it has a status.
 */
export function decide(
  item: ItemIdentity,
  stored: Buffer,
  members: readonly Pick<Member, "key">[],
  options: Pick<RestoreOptions, "restoreStatus">,
): Decision {
  const { resource, modified } = item;
  const patched = patchedObject(item);
  const decision: Decision = {
    action: "create",
    hasStatus: patched ? "status" in patched : members.some((m) => m.key === "status"),
    namespaced: resource.namespaced,
  };
  if (modified.kind === "patched")
    decision.modifiers = {
      rules: modified.rules,
      diff: modified.diff,
      ...(modified.skipped ? { skipped: modified.skipped } : {}),
    };
  else if (modified.kind === "dropped")
    decision.modifiers = { rules: modified.rules, diff: [], droppedBy: modified.rule };
  else if (modified.kind === "failed")
    decision.modifiers = { rules: modified.rules, diff: [], failedRule: modified.rule };
  const live = resource.live.get(`${item.namespace ?? ""}/${item.name}`);
  if (resource.conflict) return { ...decision, action: "conflict", reason: resource.conflict };
  if (item.invalidNamespace) return { ...decision, action: "conflict", reason: item.invalidNamespace };
  if (modified.kind === "dropped")
    return { ...decision, action: "skip", reason: `dropped by resource modifier rule ${modified.rule}` };
  if (modified.kind === "failed") return { ...decision, action: "failed", reason: modified.reason };
  if (!live) return decision;
  decision.liveUid = live.uid;
  if (resource.policy === "fail")
    return { ...decision, action: "conflict", reason: "already exists (--existing fail)" };
  // its text is the source's: unchanged, and neither side parsed
  if (live.sameText) return { ...decision, action: "unchanged" };
  const body = patched ?? (parseJson(stored.toString("utf8")) as JsonObject);
  const md = isJsonObject(body["metadata"]) ? body["metadata"] : {};
  // a mapped object is compared as it will be written: through the map's version
  const apiVersion = mappedApiVersion(resource);
  const wanted = digestOf(
    {
      ...body,
      ...(apiVersion ? { apiVersion } : {}),
      metadata: { ...md, ...(item.namespace ? { namespace: item.namespace } : {}) },
    },
    options.restoreStatus,
  );
  if (wanted === live.digest) return { ...decision, action: "unchanged" };
  if (resource.policy === "update") return { ...decision, action: "update" };
  return { ...decision, action: "skip", reason: "exists and differs from the snapshot (--existing skip)" };
}
