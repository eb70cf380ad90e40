/**
 * Extension `replaceRegex`: a regular expression replaced in string values, every occurrence,
 * at one JSON pointer (the string there, or every string below it) or at every string whose
 * pointer matches one of the `paths` globs. Keys are never changed, only values.
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";
import { PatchError } from "./json-value.ts";
import { formatPointer, getAt } from "./pointer.ts";
import type { ReplaceRegex } from "./types.ts";

type Visit = (value: string, pointer: string) => string;

/** A copy of `value` with `visit` applied to every string; untouched subtrees are shared. */
function mapStrings(value: JsonValue, pointer: string, visit: Visit): JsonValue {
  if (typeof value === "string") return visit(value, pointer);
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v, i) => {
      const n = mapStrings(v, `${pointer}/${i}`, visit);
      changed ||= n !== v;
      return n;
    });
    return changed ? out : value;
  }
  if (isJsonObject(value)) {
    let out: JsonObject | undefined;
    for (const [k, v] of Object.entries(value)) {
      const n = mapStrings(v, `${pointer}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`, visit);
      if (n !== v) (out ??= { ...value })[k] = n;
    }
    return out ?? value;
  }
  return value;
}

export function applyReplaceRegex(obj: JsonObject, r: ReplaceRegex): JsonObject {
  const replace = (s: string) => s.replace(r.pattern, r.replacement);
  if (r.path) {
    const root = formatPointer(r.path);
    if (getAt(obj, r.path) === undefined)
      throw new PatchError(`replaceRegex ${root}: the path does not exist`);
    return mapStrings(obj, "", (s, p) =>
      p === root || p.startsWith(`${root}/`) ? replace(s) : s,
    ) as JsonObject;
  }
  const globs = r.paths ?? [];
  return mapStrings(obj, "", (s, p) => (globs.some((g) => g.test(p)) ? replace(s) : s)) as JsonObject;
}
