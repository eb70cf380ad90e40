/** Pure verdicts of a plan: what to do with one object, and with one archived CRD. */
import { diffJson } from "../json/diff.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import type { Member } from "../json/scan.ts";
import { canonicalJson } from "../json/canonical.ts";
import { digestOf, liveKey, type LiveObject } from "../objects/live.ts";
import type { RestoreOptions } from "./options.ts";
import type { Decision } from "./decisions.ts";
import { patchedObject, type ItemIdentity } from "./item.ts";
import { conversionWebhook } from "./guards.ts";
import type { CrdPlan, ResourcePlan } from "./types.ts";
import { mappedApiVersion, targetVersions, versionVerdict } from "./versions.ts";

/** A CRD the restore creates from the snapshot: the verdict on its own archived versions. */
export function noteArchivedCrd(resource: ResourcePlan | undefined, body: JsonObject): void {
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

/** `live`: the CRD as planning read it (undefined: not served then). */
export function planCrd(name: string, body: JsonObject, live: JsonObject | undefined): CrdPlan {
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
 * `live`: the live object as compared (by default the one its resource's read found).
 */
export function decide(
  item: ItemIdentity,
  stored: Buffer,
  members: readonly Pick<Member, "key">[],
  options: Pick<RestoreOptions, "restoreStatus">,
  live: LiveObject | undefined = item.resource.live.get(liveKey(item.namespace, item.name)),
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
