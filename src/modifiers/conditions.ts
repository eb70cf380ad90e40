/** Does a rule's `conditions` hold for an object as stored (its original namespace, before any --namespace-map)? */
import { isJsonObject, type JsonObject } from "../json/json.ts";
import { jsonEqual } from "./json-value.ts";
import { getAt } from "./pointer.ts";
import type { Conditions } from "./types.ts";

export interface StoredIdentity {
  /** `plural.group` */
  groupResource: string;
  namespace?: string;
  name: string;
}

/** The conditions that need no body: groupResource, namespace and name. */
export function identityMatches(c: Conditions, id: StoredIdentity): boolean {
  if (!c.groupResource.test(id.groupResource)) return false;
  // as Velero: namespaces constrain namespaced objects only
  if (
    id.namespace !== undefined &&
    c.namespaces.length > 0 &&
    !c.namespaces.some((g) => g.test(id.namespace!))
  )
    return false;
  return !c.resourceNameRegex || c.resourceNameRegex.test(id.name);
}

function labelsOf(obj: JsonObject): Record<string, string> {
  const md = isJsonObject(obj["metadata"]) ? obj["metadata"] : {};
  return (isJsonObject(md["labels"]) ? md["labels"] : {}) as Record<string, string>;
}

/** The conditions that read the body: labelSelector and matches. */
export function bodyMatches(c: Conditions, obj: JsonObject): boolean {
  if (c.labelSelector) {
    const labels = labelsOf(obj);
    for (const [k, v] of Object.entries(c.labelSelector.matchLabels)) if (labels[k] !== v) return false;
    for (const e of c.labelSelector.matchExpressions) {
      const has = Object.hasOwn(labels, e.key);
      const ok =
        e.operator === "Exists"
          ? has
          : e.operator === "DoesNotExist"
            ? !has
            : e.operator === "In"
              ? has && e.values.includes(labels[e.key]!)
              : !has || !e.values.includes(labels[e.key]!);
      if (!ok) return false;
    }
  }
  return c.matches.every((m) => {
    const v = getAt(obj, m.path);
    return v !== undefined && jsonEqual(v, m.value);
  });
}
