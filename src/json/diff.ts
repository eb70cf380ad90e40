import { isJsonObject, type JsonObject, type JsonValue } from "./json.ts";

export interface FieldChange {
  /** A JSON-path-like location: `.spec.replicas`, `.metadata.labels["app"]`, `.spec.ports[0]`. */
  path: string;
  op: "added" | "removed" | "changed";
}

function key(path: string, k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
}

function same(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true; // a patched object shares its untouched subtrees with the original
  // two objects or lists: the walk compares them member by member (serialising them here would
  // cost their whole size again at every level of depth)
  if (isContainer(a) && isContainer(b)) return false;
  // two different strings, booleans or plain numbers; only lossless numbers need their text compared
  if (!isRaw(a) && !isRaw(b)) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function isContainer(v: JsonValue | undefined): boolean {
  return Array.isArray(v) || isJsonObject(v);
}

function isRaw(v: JsonValue | undefined): boolean {
  return typeof v === "object" && v !== null && JSON.isRawJSON(v);
}

/**
 * Field-level differences from `from` to `to`, deepest changed paths first found, at most `limit`
 * (a diff is for a human to read, and a report must stay small). Values are never included:
 * paths only, so a report cannot leak object contents.
 */
export function diffJson(from: JsonValue | undefined, to: JsonValue | undefined, limit = 20): FieldChange[] {
  const out: FieldChange[] = [];
  const walk = (a: JsonValue | undefined, b: JsonValue | undefined, path: string) => {
    if (out.length >= limit || same(a, b)) return;
    if (a === undefined) return void out.push({ path: path || ".", op: "added" });
    if (b === undefined) return void out.push({ path: path || ".", op: "removed" });
    if (isJsonObject(a) && isJsonObject(b)) {
      // own members only: a key named `constructor` or `__proto__` is data, not Object.prototype's
      const own = (o: JsonObject, k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
        walk(own(a, k), own(b, k), key(path, k));
      return;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((v, i) => walk(v, b[i], `${path}[${i}]`));
      return;
    }
    out.push({ path: path || ".", op: "changed" });
  };
  walk(from, to, "");
  return out;
}
