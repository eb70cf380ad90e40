/**
 * What one recorded version of an object is, against the version before it: pure, so the rules
 * (in the base, created, updated, status only, deleted, recreated) are tested on tables. Bodies are
 * compared as the journal and snapshots store them: cleaned (no resourceVersion, managedFields or
 * other server-owned metadata), so a put that changed nothing a person wrote is not a version.
 */
import { isJsonObject, stringifyJson, type JsonObject, type JsonValue } from "../json/json.ts";
import { parseJsonMapped } from "../json/numbers-mapped.ts";

/**
 * in-base: the object as a chain's base snapshot holds it; in-snapshot: as a snapshot outside every
 * journal holds it; status-only: an update whose every changed path is under `.status`.
 */
export type VersionKind =
  "in-base" | "in-snapshot" | "created" | "updated" | "status-only" | "deleted" | "recreated";

/** Each kind as `history` and the web view say it. */
export const VERSION_WORDS: Readonly<Record<VersionKind, string>> = {
  "in-base": "in the base",
  "in-snapshot": "in a snapshot",
  created: "created",
  updated: "updated",
  "status-only": "status only",
  deleted: "deleted",
  recreated: "recreated",
};

/** Something the journal or a snapshot says about one object at a time. */
export type Observation =
  | { t: Date; op: "snapshot"; base: boolean; body: Buffer | undefined; uid: string }
  | { t: Date; op: "put"; body: Buffer; uid: string }
  | { t: Date; op: "delete"; uid: string };

/** The object's state after an observation; body undefined: it does not exist. */
export interface ObjectState {
  t: Date;
  body: Buffer | undefined;
  uid: string;
}

export interface Classified {
  what: VersionKind;
  /** Changed paths from the version before (none for the first version, a create or a delete). */
  paths: string[];
}

/** At most this many changed paths per version: a summary for people, not a diff. */
export const MAX_PATHS = 50;

/**
 * The version an observation makes, or undefined when it changes nothing (a snapshot or re-list
 * that holds the object as it was, a delete of an object already gone).
 */
export function classify(prev: ObjectState | undefined, o: Observation): Classified | undefined {
  const alive = prev?.body !== undefined;
  if (o.op === "delete") return alive ? { what: "deleted", paths: [] } : undefined;
  if (o.op === "snapshot") {
    if (o.body === undefined) return alive ? { what: "deleted", paths: [] } : undefined;
    const what = o.base ? "in-base" : "in-snapshot";
    if (!alive) return { what, paths: [] };
    if (prev.body!.equals(o.body)) return undefined;
    return { what, paths: changedPaths(prev.body!, o.body) };
  }
  if (!prev) return { what: "created", paths: [] };
  if (!alive || (prev.uid !== "" && o.uid !== "" && prev.uid !== o.uid))
    return { what: "recreated", paths: alive ? changedPaths(prev.body!, o.body) : [] };
  if (prev.body!.equals(o.body)) return undefined;
  const paths = changedPaths(prev.body!, o.body);
  if (paths.length === 0) return undefined; // the same JSON written differently
  return { what: paths.every(isStatusPath) ? "status-only" : "updated", paths };
}

export function isStatusPath(path: string): boolean {
  return path === ".status" || path.startsWith(".status.") || path.startsWith(".status[");
}

/** One changed field, with its values as lossless JSON text (absent on the side it is missing). */
export interface FieldDiff {
  path: string;
  op: "added" | "removed" | "changed";
  from?: string;
  to?: string;
}

function member(path: string, k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
}

function parseBody(body: Buffer): JsonValue {
  return parseJsonMapped(body.toString("utf8"));
}

/**
 * Field-level differences with values, deepest paths, in document order: what `history --diff`
 * prints. A list whose length changed is one change of the whole list, as diffJson reports it.
 */
export function fieldDiff(from: Buffer | undefined, to: Buffer | undefined, limit = MAX_PATHS): FieldDiff[] {
  const out: FieldDiff[] = [];
  const walk = (a: JsonValue | undefined, b: JsonValue | undefined, path: string) => {
    if (out.length >= limit) return;
    if (a === undefined && b === undefined) return;
    if (a === undefined) return void out.push({ path: path || ".", op: "added", to: stringifyJson(b!) });
    if (b === undefined) return void out.push({ path: path || ".", op: "removed", from: stringifyJson(a) });
    if (isJsonObject(a) && isJsonObject(b)) {
      const own = (o: JsonObject, k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
        walk(own(a, k), own(b, k), member(path, k));
      return;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((v, i) => walk(v, b[i], `${path}[${i}]`));
      return;
    }
    const x = stringifyJson(a);
    const y = stringifyJson(b);
    if (x !== y) out.push({ path: path || ".", op: "changed", from: x, to: y });
  };
  walk(from === undefined ? undefined : parseBody(from), to === undefined ? undefined : parseBody(to), "");
  return out;
}

/** The changed paths alone (values never leave this function). */
export function changedPaths(from: Buffer, to: Buffer, limit = MAX_PATHS): string[] {
  return fieldDiff(from, to, limit).map((d) => d.path);
}
