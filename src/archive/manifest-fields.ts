/**
 * The field checks manifest parsing is made of: typed readers that name the offending path, and
 * the invariants no correct writer breaks (a start time that is its id's, names that are entry
 * names). Every failure is ARCHIVE_INVALID with one line.
 */
import { isJsonObject, type JsonObject } from "../json/json.ts";
import { isRfc3339 } from "../units/time.ts";
import { SHA256_PATTERN, archiveInvalid, quote, snapshotIdTime } from "./format.ts";
import { isSegment } from "./names.ts";

/** A kind as the API server accepts one (lowercased, a DNS-1035 label): a plain identifier. */
const KIND = /^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const MAX_KIND_LENGTH = 63;

/** Field readers that name the offending path, e.g. `resources[2].count`. */
export class Fields {
  readonly #who: string;
  constructor(who: string) {
    this.#who = who;
  }
  fail(path: string, what: string): never {
    throw archiveInvalid(`${this.#who}: ${path} ${what}`, { field: path });
  }
  object(v: unknown, path: string): JsonObject {
    if (!isJsonObject(v as JsonObject)) this.fail(path, "must be an object");
    return v as JsonObject;
  }
  string(v: unknown, path: string): string {
    if (typeof v !== "string") this.fail(path, "must be a string");
    return v;
  }
  count(v: unknown, path: string): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
      this.fail(path, "must be a non-negative integer");
    return v;
  }
  boolean(v: unknown, path: string): boolean {
    if (typeof v !== "boolean") this.fail(path, "must be true or false");
    return v;
  }
  sha256(v: unknown, path: string): string {
    if (typeof v !== "string" || !SHA256_PATTERN.test(v)) this.fail(path, "must be 64 lowercase hex digits");
    return v;
  }
  time(v: unknown, path: string): string {
    if (!isRfc3339(v)) {
      this.fail(path, "must be an RFC 3339 timestamp");
    }
    return v;
  }
  array<T>(v: unknown, path: string, item: (x: unknown, path: string) => T): T[] {
    if (!Array.isArray(v)) this.fail(path, "must be an array");
    return v.map((x, i) => item(x, `${path}[${i}]`));
  }
}

/**
 * A snapshot's id is its start time: a manifest whose startedAt names another second was not
 * written by crd-backup (a forged date would otherwise steer `latest` and retention).
 */
export function checkTimes(f: Fields, id: string | undefined, startedAt: string, finishedAt: string): void {
  if (
    id !== undefined &&
    Math.floor(Date.parse(startedAt) / 1000) !== Math.floor(snapshotIdTime(id).getTime() / 1000)
  )
    f.fail("startedAt", `is ${startedAt}, but the snapshot id names ${snapshotIdTime(id).toISOString()}`);
  if (Date.parse(finishedAt) < Date.parse(startedAt)) f.fail("finishedAt", "is before startedAt");
}

/**
 * A resource's group, version and plural become entry names and API paths, so each must be a
 * segment of the archive entry grammar (a forged `v1/../../api/v1/namespaces/x/secrets` or `v1?x`
 * would steer a restore's requests elsewhere); its kind must be an identifier. The message names
 * the resource, quoted: its parts are untrusted.
 */
export function checkNames<R extends { group: string; version: string; plural: string; kind: string }>(
  f: Fields,
  path: string,
  r: R,
): R {
  const bad = (field: string, value: string, rule: string) =>
    f.fail(
      `${path}.${field}`,
      `of resource ${quote(`${r.plural}.${r.group}`)} is ${quote(value)}, not ${rule}`,
    );
  for (const field of ["group", "version", "plural"] as const)
    if (!isSegment(r[field])) bad(field, r[field], "a lowercase DNS name as archive entry names allow");
  if (r.kind.length > MAX_KIND_LENGTH || !KIND.test(r.kind))
    bad("kind", r.kind, "an identifier (letters, digits and -, at most 63)");
  return r;
}
