import type { ManifestResource } from "../archive/manifest.ts";
import { diffJson, type FieldChange } from "../diff/json-diff.ts";
import type { KubeClient } from "../kube/client.ts";
import { isJsonObject, parseJson, type JsonObject } from "../kube/json.ts";
import { objectMembers, parseAt } from "../kube/json-scan.ts";
import { parseSelector } from "../kube/selector.ts";
import { EntryModifiers } from "../modifiers/entries.ts";
import { namespaceSelected, resourceSelected } from "../snapshot/filters.ts";
import { getJson, liveCrd, liveObjects, digestOf, type LiveObject } from "./live.ts";
import { canonicalJson } from "./normalize.ts";
import { policyFor, targetNamespace, type ExistingPolicy, type RestoreOptions } from "./options.ts";
import { restorePhases } from "./order.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";

export interface ResourcePlan {
  key: string;
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  policy: ExistingPolicy;
  /** The CRD is served live already (before this restore). */
  crdLive: boolean;
  statusSubresource: boolean;
  /** Why no object of this resource can be restored (a conflicting live CRD). */
  conflict?: string;
  live: Map<string, LiveObject>;
}

export type CrdAction = "create" | "unchanged" | "differs";
export interface CrdPlan {
  name: string;
  action: CrdAction;
  diff?: FieldChange[];
}

export type ItemAction = "create" | "update" | "unchanged" | "skip" | "conflict" | "failed";

/** What resource modifiers did to an object: the rules that matched, the changed paths (never values). */
export interface ItemModifiers {
  rules: number[];
  diff: FieldChange[];
  /** Velero v1 rules whose JSON Patch `test` did not hold: not applied, as Velero does. */
  skipped?: number[];
  /** The rule that failed on the object, or dropped it. */
  failedRule?: number;
  droppedBy?: number;
}
export interface ItemPlan {
  entry: string;
  resource: ResourcePlan;
  sourceNamespace?: string;
  namespace?: string;
  name: string;
  uid?: string;
  ownerUids: string[];
  hasStatus: boolean;
  action: ItemAction;
  reason?: string;
  liveUid?: string;
  phase: number;
  /** Set when a resource modifier rule matched: the body to write is the patched one (apply.ts re-derives it). */
  modifiers?: ItemModifiers;
}

export interface NamespacePlan {
  name: string;
  source: string;
  exists: boolean;
  captured?: JsonObject;
}

export interface RestorePlan {
  snapshot: VerifiedSnapshot;
  resources: Map<string, ResourcePlan>;
  crds: CrdPlan[];
  namespaces: NamespacePlan[];
  items: ItemPlan[];
  /** The rule set bound to this snapshot, when --resource-modifiers was given. */
  modifiers?: EntryModifiers;
}

const resourceKeyOf = (plural: string, group: string) => `${plural}.${group}`;

async function planResource(
  client: KubeClient,
  r: ManifestResource,
  options: RestoreOptions,
  modifiers: EntryModifiers | undefined,
): Promise<ResourcePlan> {
  const plan: ResourcePlan = {
    key: resourceKeyOf(r.plural, r.group),
    group: r.group,
    version: r.version,
    plural: r.plural,
    kind: r.kind,
    namespaced: r.namespaced,
    policy: policyFor(options, r.plural, r.group),
    crdLive: false,
    statusSubresource: false,
    live: new Map(),
  };
  const live = await liveCrd(client, plan.key, options.signal);
  if (!live) return plan;
  // the snapshot's own CRD, read later, replaces this: its schema is the stored version's
  modifiers?.noteCrd(plan.key, live.raw);
  plan.crdLive = true;
  plan.statusSubresource = live.info.statusVersions.includes(r.version);
  if (!live.info.servedVersions.includes(r.version)) {
    plan.conflict = `the live CRD ${plan.key} does not serve ${r.version}, the version the snapshot stored (it serves ${live.info.servedVersions.join(", ") || "nothing"})`;
  } else if (live.info.namespaced !== r.namespaced) {
    plan.conflict = `the live CRD ${plan.key} is ${live.info.namespaced ? "Namespaced" : "Cluster"}-scoped, the snapshot's was not`;
  } else {
    plan.live = await liveObjects(
      client,
      r.group,
      r.version,
      r.plural,
      options.restoreStatus,
      options.signal,
    );
  }
  return plan;
}

/** The part of a CRD a restore would write: everything but server-owned metadata and status. */
function crdSpecForm(crd: JsonObject): JsonObject {
  const md = isJsonObject(crd["metadata"]) ? crd["metadata"] : {};
  return { labels: md["labels"] ?? {}, annotations: md["annotations"] ?? {}, spec: crd["spec"] ?? {} };
}

/**
 * Builds the plan for a verified snapshot (nothing is written before the whole archive checks
 * out): read the live state of every resource it holds, then decide per CRD, namespace and object
 * what the restore will do and in which phase.
 */
export async function buildPlan(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  options: RestoreOptions,
): Promise<RestorePlan> {
  const selected = snapshot.manifest.resources.filter((r) =>
    resourceSelected(options.filters, r.group, r.plural),
  );
  const modifiers = options.modifiers ? new EntryModifiers(options.modifiers) : undefined;
  const resources = new Map<string, ResourcePlan>();
  for (const r of selected)
    resources.set(resourceKeyOf(r.plural, r.group), await planResource(client, r, options, modifiers));

  const selector = options.filters.selector ? parseSelector(options.filters.selector) : undefined;
  const crds: CrdPlan[] = [];
  const items: ItemPlan[] = [];
  const captured = new Map<string, JsonObject>();
  for await (const entry of snapshot.entries()) {
    if (entry.kind === "crd") {
      if (!resources.has(entry.record.name)) continue;
      const body = parseJson(entry.body.toString("utf8")) as JsonObject;
      modifiers?.noteCrd(entry.record.name, body);
      const live = await liveCrd(client, entry.record.name, options.signal);
      if (!live) crds.push({ name: entry.record.name, action: "create" });
      else {
        const same = canonicalJson(crdSpecForm(body)) === canonicalJson(crdSpecForm(live.raw));
        crds.push(
          same
            ? { name: entry.record.name, action: "unchanged" }
            : {
                name: entry.record.name,
                action: "differs",
                diff: diffJson(crdSpecForm(live.raw), crdSpecForm(body)),
              },
        );
      }
    } else if (entry.kind === "namespace") {
      captured.set(entry.record.name, parseJson(entry.body.toString("utf8")) as JsonObject);
    } else if (entry.kind === "object") {
      const resource = resources.get(resourceKeyOf(entry.ref.plural, entry.ref.group));
      if (!resource || !namespaceSelected(options.filters, entry.ref.namespace)) continue;
      // planning reads only what it needs: the top-level keys, and labels when a selector asks
      const { members } = objectMembers(entry.body, 0);
      if (selector) {
        const meta = members.find((m) => m.key === "metadata");
        const md = meta
          ? (parseAt(entry.body, meta.valueStart, meta.end) as { labels?: Record<string, string> })
          : {};
        if (!selector(md.labels ?? {})) continue;
      }
      const target =
        entry.ref.namespace === undefined ? undefined : targetNamespace(options, entry.ref.namespace);
      const namespace = target?.name;
      // conditions see the object as stored; everything below sees the patched object
      const modified = modifiers?.modify(entry.ref, entry.body) ?? { kind: "unmatched" as const };
      const patched = modified.kind === "patched" ? modified.object : undefined;
      const patchedName =
        patched && isJsonObject(patched["metadata"]) ? patched["metadata"]["name"] : undefined;
      const item: ItemPlan = {
        entry: entry.name,
        resource,
        sourceNamespace: entry.ref.namespace,
        namespace,
        name: typeof patchedName === "string" ? patchedName : entry.ref.name,
        uid: entry.record.uid,
        ownerUids: entry.record.ownerUids ?? [],
        hasStatus: patched ? "status" in patched : members.some((m) => m.key === "status"),
        action: "create",
        phase: 0,
      };
      if (modified.kind === "patched")
        item.modifiers = {
          rules: modified.rules,
          diff: modified.diff,
          ...(modified.skipped ? { skipped: modified.skipped } : {}),
        };
      else if (modified.kind === "dropped")
        item.modifiers = { rules: modified.rules, diff: [], droppedBy: modified.rule };
      else if (modified.kind === "failed")
        item.modifiers = { rules: modified.rules, diff: [], failedRule: modified.rule };
      const live = resource.live.get(`${namespace ?? ""}/${item.name}`);
      if (resource.conflict) {
        item.action = "conflict";
        item.reason = resource.conflict;
      } else if (target?.invalid) {
        item.action = "conflict";
        item.reason = target.invalid;
      } else if (modified.kind === "dropped") {
        item.action = "skip";
        item.reason = `dropped by resource modifier rule ${modified.rule}`;
      } else if (modified.kind === "failed") {
        item.action = "failed";
        item.reason = modified.reason;
      } else if (live && resource.policy === "fail") {
        item.liveUid = live.uid;
        item.action = "conflict";
        item.reason = "already exists (--existing fail)";
      } else if (live) {
        item.liveUid = live.uid;
        const body = patched ?? (parseJson(entry.body.toString("utf8")) as JsonObject);
        const md = isJsonObject(body["metadata"]) ? body["metadata"] : {};
        const wanted = digestOf(
          { ...body, metadata: { ...md, ...(namespace ? { namespace } : {}) } },
          options.restoreStatus,
        );
        if (wanted === live.digest) item.action = "unchanged";
        else if (resource.policy === "update") item.action = "update";
        else {
          item.action = "skip";
          item.reason = "exists and differs from the snapshot (--existing skip)";
        }
      }
      items.push(item);
    }
  }

  const phases = restorePhases(
    items.map((i) => ({ uid: i.uid, ownerUids: i.ownerUids, namespaced: i.resource.namespaced })),
  );
  items.forEach((item, i) => (item.phase = phases[i]!));

  const namespaces: NamespacePlan[] = [];
  const targets = new Map<string, string>();
  for (const item of items) {
    if (item.namespace && (item.action === "create" || item.action === "update"))
      targets.set(item.namespace, item.sourceNamespace!);
  }
  for (const [name, source] of [...targets].sort()) {
    const exists = (await getJson(client, `/api/v1/namespaces/${name}`, options.signal)) !== undefined;
    namespaces.push({ name, source, exists, captured: captured.get(source) });
  }
  return { snapshot, resources, crds, namespaces, items, ...(modifiers ? { modifiers } : {}) };
}
