/** RFC 7386 JSON Merge Patch: objects merge key by key, `null` removes, anything else replaces. */
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";
import { cloneJson } from "./json-value.ts";

export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}
