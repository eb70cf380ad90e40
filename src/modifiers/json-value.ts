/** Copying and comparing JSON values that may hold lossless numbers (kube/json.ts RawJSON). */
import { isJsonObject, type JsonValue } from "../json/json.ts";

/** A failure of one rule on one object: the report says which rule and this reason. */
export class PatchError extends Error {
  /** A JSON Patch `test` that did not hold: Velero's v1 skips the rule, crd-backup.io/v1 fails the object. */
  readonly testFailed: boolean;

  constructor(message: string, testFailed = false) {
    super(message);
    this.name = "PatchError";
    this.testFailed = testFailed;
  }
}

/** A deep copy; RawJSON numbers are immutable and shared. */
export function cloneJson<T extends JsonValue>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (isJsonObject(value)) {
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(value)) out[k] = cloneJson(value[k]!);
    return out as T;
  }
  return value;
}

function numberText(v: JsonValue): string | undefined {
  if (typeof v === "number") return String(v);
  if (v !== null && typeof v === "object" && JSON.isRawJSON(v)) return String(Number(v.rawJSON));
  return undefined;
}

/** JSON equality: object keys in any order, numbers by value. */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  const na = numberText(a);
  const nb = numberText(b);
  if (na !== undefined || nb !== undefined) return na === nb;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

export function describeType(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (isJsonObject(v)) return "an object";
  return numberText(v) !== undefined ? "a number" : `a ${typeof v}`;
}
