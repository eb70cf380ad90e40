/**
 * Strategic merge for custom resources, the way the API server merges them: by the CRD's schema
 * (schema.ts), not by Go struct tags. Objects merge key by key and `null` removes a key; lists
 * with `x-kubernetes-list-type: map` merge item by item on their `x-kubernetes-list-map-keys`
 * (other items are kept), `set` lists take the union, and every other list is replaced.
 * Directives: `$patch: replace` on an object or as a list item replaces it whole, `$patch: delete`
 * on a map-list item removes the item with its keys.
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";
import { cloneJson, jsonEqual, PatchError } from "./json-value.ts";
import { fieldSchema, itemSchema, listMerge, type Schema } from "./schema.ts";

const DIRECTIVE = "$patch";

function withoutDirective(obj: JsonObject): JsonObject {
  const { [DIRECTIVE]: _d, ...rest } = obj;
  return rest;
}

function mergeObject(
  original: JsonValue | undefined,
  patch: JsonObject,
  schema: Schema,
  at: string,
  root: boolean,
): JsonValue | undefined {
  const directive = patch[DIRECTIVE];
  if (directive === "replace") return cloneJson(withoutDirective(patch));
  if (directive === "delete") return undefined;
  if (directive !== undefined && directive !== "merge")
    throw new PatchError(`${at || "/"}: unknown directive $patch: ${JSON.stringify(directive)}`);
  const out: JsonObject = isJsonObject(original) ? { ...original } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === DIRECTIVE) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const merged = merge(out[k], v, fieldSchema(schema, k, root), `${at}/${k}`);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

function keyOf(item: JsonValue, keys: string[], at: string): string {
  if (!isJsonObject(item)) throw new PatchError(`${at}: an item of a map list is not an object`);
  return JSON.stringify(
    keys.map((k) => {
      const v = item[k];
      return v === undefined ? null : v;
    }),
  );
}

function mergeList(
  original: JsonValue | undefined,
  patch: JsonValue[],
  schema: Schema,
  at: string,
): JsonValue {
  const replaceAll = patch.some(
    (p) => isJsonObject(p) && p[DIRECTIVE] === "replace" && Object.keys(p).length === 1,
  );
  const items = replaceAll ? patch.filter((p) => !(isJsonObject(p) && p[DIRECTIVE] === "replace")) : patch;
  const how = listMerge(schema);
  if (replaceAll || how.type === "atomic" || !Array.isArray(original)) {
    return cloneJson(items.map((p) => (isJsonObject(p) ? withoutDirective(p) : p)));
  }
  if (how.type === "set") {
    const out = [...original];
    for (const p of items) if (!out.some((o) => jsonEqual(o, p))) out.push(cloneJson(p));
    return out;
  }
  const itemsSchema = itemSchema(schema);
  const out: (JsonValue | undefined)[] = [...original];
  for (const p of items) {
    const key = keyOf(p, how.keys, at);
    const i = out.findIndex((o) => o !== undefined && keyOf(o, how.keys, at) === key);
    const merged = merge(
      i < 0 ? undefined : out[i],
      p,
      itemsSchema,
      `${at}[${how.keys.map((k) => `${k}=${JSON.stringify((p as JsonObject)[k] ?? null)}`).join(",")}]`,
    );
    if (i >= 0) out[i] = merged;
    else if (merged !== undefined) out.push(merged);
  }
  return out.filter((o) => o !== undefined);
}

function merge(
  original: JsonValue | undefined,
  patch: JsonValue,
  schema: Schema,
  at: string,
): JsonValue | undefined {
  if (isJsonObject(patch)) return mergeObject(original, patch, schema, at, false);
  if (Array.isArray(patch)) return mergeList(original, patch, schema, at);
  return cloneJson(patch);
}

/** `patch` merged into a copy of `original` by `schema` (the CRD's openAPIV3Schema of the stored version). */
export function applyStrategicPatch(original: JsonObject, patch: JsonValue, schema: Schema): JsonObject {
  if (!isJsonObject(patch)) throw new PatchError("a strategic merge patch must be an object");
  const out = mergeObject(original, patch, schema, "", true);
  if (!isJsonObject(out)) throw new PatchError("the patch deletes the whole object");
  return out;
}
