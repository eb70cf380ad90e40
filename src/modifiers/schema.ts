/**
 * The part of a CRD's structural schema a strategic merge needs: how each list merges. Lists
 * without `x-kubernetes-list-type` are atomic, as the API server treats them; object metadata
 * follows ObjectMeta's own markers (finalizers a set, ownerReferences a map keyed by uid).
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";

export type Schema = JsonObject | undefined;

export type ListMerge = { type: "atomic" } | { type: "set" } | { type: "map"; keys: string[] };

const METADATA: JsonObject = {
  type: "object",
  properties: {
    finalizers: { type: "array", "x-kubernetes-list-type": "set" },
    ownerReferences: {
      type: "array",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["uid"],
    },
    labels: { type: "object", additionalProperties: { type: "string" } },
    annotations: { type: "object", additionalProperties: { type: "string" } },
  },
};

/** The openAPIV3Schema of `version` in a CRD body, or undefined. */
export function crdVersionSchema(crd: JsonValue, version: string): Schema {
  if (!isJsonObject(crd) || !isJsonObject(crd["spec"])) return undefined;
  const spec = crd["spec"];
  const versions = Array.isArray(spec["versions"]) ? spec["versions"] : [];
  for (const v of versions) {
    if (isJsonObject(v) && v["name"] === version && isJsonObject(v["schema"])) {
      const s = v["schema"]["openAPIV3Schema"];
      if (isJsonObject(s)) return s;
    }
  }
  const legacy = isJsonObject(spec["validation"]) ? spec["validation"]["openAPIV3Schema"] : undefined;
  return isJsonObject(legacy) ? legacy : undefined;
}

/** The schema of field `key` below `schema` (a property, or additionalProperties for maps). */
export function fieldSchema(schema: Schema, key: string, root: boolean): Schema {
  if (root && key === "metadata") return METADATA;
  if (!schema) return undefined;
  const props = schema["properties"];
  if (isJsonObject(props) && isJsonObject(props[key])) return props[key];
  const extra = schema["additionalProperties"];
  return isJsonObject(extra) ? extra : undefined;
}

export function itemSchema(schema: Schema): Schema {
  const items = schema?.["items"];
  return isJsonObject(items) ? items : undefined;
}

export function listMerge(schema: Schema): ListMerge {
  const type = schema?.["x-kubernetes-list-type"];
  if (type === "set") return { type: "set" };
  if (type === "map") {
    const keys = schema?.["x-kubernetes-list-map-keys"];
    if (Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === "string"))
      return { type: "map", keys: keys as string[] };
  }
  return { type: "atomic" };
}
