/**
 * Index records: what index.jsonl says about an entry. A record is a function of the entry's name
 * and body alone, so the writer and the reader compute the same line independently, and the reader
 * can check the whole index against the entries without keeping either in memory.
 */
import { archiveInvalid, quote, type ArchiveVersion, type IndexRecord } from "./format.ts";
import type { ContentEntryName } from "./names.ts";

type Json = Record<string, unknown>;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parse a `.json` entry body: exactly one UTF-8 JSON object, nothing before or after it. */
export function parseEntryBody(entry: string, body: Buffer): Json {
  const bad = (why: string) => archiveInvalid(`archive entry ${quote(entry)}: ${why}`, { entry });
  if (body[0] !== 0x7b || body[body.length - 1] !== 0x7d) {
    throw bad("the body is not a single JSON object without surrounding whitespace");
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw bad("the body is not valid UTF-8");
  }
  let value: unknown;
  try {
    // Plain JSON.parse is enough: only strings are read from the body here; the bytes are kept.
    value = JSON.parse(text);
  } catch {
    throw bad("the body is not valid JSON");
  }
  if (!isObject(value)) throw bad("the body is not a JSON object");
  return value;
}

/**
 * What an index record takes from an entry body (besides metadata.name, which must equal the name
 * in the entry name): for objects, their apiVersion, kind and owners' uids; for any entry without a
 * CRDBACKUP.uid record, metadata.uid.
 */
export interface BodyFields {
  name: unknown;
  uid?: string | undefined;
  apiVersion?: unknown;
  kind?: unknown;
  namespace?: unknown;
  /** metadata.ownerReferences as found in the body; each must have a string uid. */
  ownerReferences?: unknown;
}

/**
 * Derive the index record of a crd, namespace or object entry, checking that the body agrees with
 * its name. `originalUid` is the entry's CRDBACKUP.uid record; without one, the body's own
 * metadata.uid (if any) is the uid.
 */
export function describeEntry(
  entry: string,
  parsed: ContentEntryName,
  body: Buffer,
  sha256: string,
  originalUid?: string,
): IndexRecord {
  const doc = parseEntryBody(entry, body);
  const metadata = isObject(doc["metadata"]) ? doc["metadata"] : {};
  return describeFields(entry, parsed, body.length, sha256, originalUid, {
    name: metadata["name"],
    uid: typeof metadata["uid"] === "string" ? metadata["uid"] : undefined,
    apiVersion: doc["apiVersion"],
    kind: doc["kind"],
    namespace: metadata["namespace"],
    ownerReferences: metadata["ownerReferences"],
  });
}

/**
 * describeEntry for a caller that has already read the body's fields (a snapshot does, while it
 * cleans each object's text): the same record and the same checks, without parsing the body again.
 */
export function describeFields(
  entry: string,
  parsed: ContentEntryName,
  size: number,
  sha256: string,
  originalUid: string | undefined,
  fields: BodyFields,
): IndexRecord {
  const bad = (why: string) => archiveInvalid(`archive entry ${quote(entry)}: ${why}`, { entry });
  const name = fields.name;
  const uid = originalUid ?? fields.uid;
  const expectedName = parsed.kind === "object" ? parsed.ref.name : parsed.name;
  if (name !== expectedName)
    throw bad(`metadata.name is ${quote(String(name))}, expected ${quote(expectedName)}`);

  // Only the fields that apply are set, so `"uid" in record` means there is one; order is indexLine's job.
  const common: IndexRecord = { entry, sha256, size, kind: parsed.kind, name: expectedName };
  if (uid !== undefined) common.uid = uid;
  if (parsed.kind !== "object") return common;

  const { group, version, plural, namespace } = parsed.ref;
  const apiVersion = `${group}/${version}`;
  if (fields.apiVersion !== apiVersion) {
    throw bad(`apiVersion is ${quote(String(fields.apiVersion))}, expected ${quote(apiVersion)}`);
  }
  const resourceKind = fields.kind;
  if (typeof resourceKind !== "string" || resourceKind === "") throw bad("kind is missing");
  const bodyNamespace = fields.namespace ?? "";
  if (bodyNamespace !== (namespace ?? "")) {
    throw bad(`metadata.namespace is ${quote(String(bodyNamespace))}, expected ${quote(namespace ?? "")}`);
  }
  const owners = Array.isArray(fields.ownerReferences) ? (fields.ownerReferences as unknown[]) : [];
  const ownerUids = owners.map((owner) => {
    if (!isObject(owner) || typeof owner["uid"] !== "string") throw bad("an ownerReference has no uid");
    return owner["uid"];
  });
  const record: IndexRecord = {
    ...common,
    apiVersion,
    resourceKind,
    group,
    version,
    plural,
    ownerUids,
  };
  if (namespace !== undefined) record.namespace = namespace;
  return record;
}

/** Field order of an index line; part of the format, since readers compare lines byte for byte. */
const FIELD_ORDER: readonly (keyof IndexRecord)[] = [
  "entry",
  "sha256",
  "size",
  "kind",
  "uid",
  "apiVersion",
  "resourceKind",
  "group",
  "version",
  "plural",
  "namespace",
  "name",
  "ownerUids",
];

/** The canonical index.jsonl line of a record, newline included. */
export function indexLine(record: IndexRecord): string {
  // Written in canonical order with absent fields left out, whatever order the record was built
  // in: what JSON.stringify would write for an object built in that order, without building one.
  let line = "";
  for (const field of FIELD_ORDER) {
    const value = record[field];
    if (value !== undefined) line += `${line === "" ? "{" : ","}"${field}":${JSON.stringify(value)}`;
  }
  return `${line}}\n`;
}

/**
 * The index.sha256 line of a record (format version 3): `sha256sum`'s own format, so
 * `sha256sum -c index.sha256` checks an unpacked archive. Names are ASCII without backslashes or
 * newlines (their grammar), so none needs sha256sum's escaping.
 */
export function sumsLine(record: IndexRecord): string {
  return `${record.sha256}  ${record.entry}\n`;
}

/** The index line of a record in the given format version. */
export const indexLineOf = (version: ArchiveVersion): ((record: IndexRecord) => string) =>
  version === 1 ? indexLine : sumsLine;
