/**
 * Entry names: built from trusted parts when writing, parsed from untrusted tar headers when
 * reading. A name that parses is one of the five entry kinds and nothing else, so no caller ever
 * sees a path that could escape a directory (`..`, absolute, backslash, NUL) or a name outside the
 * grammar of docs/format.md.
 */
import {
  CLUSTER_SCOPE,
  HEADER_ENTRY,
  INDEX_ENTRIES,
  MAX_NAME_BYTES,
  archiveInvalid,
  quote,
  type ObjectRef,
} from "./format.ts";

/** A path segment: lowercase DNS-subdomain-like names (groups, versions, plurals, object names). */
const SEGMENT = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;
const MAX_SEGMENT_BYTES = 253;
/** Namespaces are DNS-1123 labels; that they cannot contain `_` is what makes `_cluster` safe. */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_LABEL_BYTES = 63;

export type ParsedEntryName =
  | { kind: "header" }
  | { kind: "index" }
  | { kind: "crd"; name: string }
  | { kind: "namespace"; name: string }
  | { kind: "object"; ref: ObjectRef };

/** The names whose entries are listed in index.jsonl. */
export type ContentEntryName = Extract<ParsedEntryName, { kind: "crd" | "namespace" | "object" }>;

/** A valid segment: also what a manifest's resource group, version and plural must be (they name entries and URLs). */
export function isSegment(s: string): boolean {
  return s.length <= MAX_SEGMENT_BYTES && SEGMENT.test(s) && !s.includes("..");
}

export function isLabel(s: string): boolean {
  return s.length <= MAX_LABEL_BYTES && LABEL.test(s);
}

/** `<stem>.json` → stem, if the stem is a valid segment. */
function jsonStem(fileName: string, valid: (s: string) => boolean): string | undefined {
  if (!fileName.endsWith(".json")) return undefined;
  const stem = fileName.slice(0, -".json".length);
  return valid(stem) ? stem : undefined;
}

/**
 * Classify an untrusted entry name, or throw ARCHIVE_INVALID. The explicit checks come first so
 * that the message says what is dangerous about a name, not only that it does not match.
 */
export function parseEntryName(name: string): ParsedEntryName {
  const bad = (why: string) =>
    archiveInvalid(`archive entry ${quote(name)} is not allowed: ${why}`, { entry: name });
  if (name.length === 0) throw bad("the name is empty");
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES)
    throw bad(`the name is longer than ${MAX_NAME_BYTES} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw bad("the name contains a control character");
  if (name.includes("\\")) throw bad("the name contains a backslash");
  if (name.startsWith("/")) throw bad("the name is an absolute path");
  if (name.includes("..")) throw bad('the name contains ".."');

  if (name === HEADER_ENTRY) return { kind: "header" };
  if (name === INDEX_ENTRIES[1] || name === INDEX_ENTRIES[3]) return { kind: "index" };

  const parts = name.split("/");
  const [top, ...rest] = parts;
  if (top === "crds" && rest.length === 1) {
    const crd = jsonStem(rest[0]!, isSegment);
    if (crd !== undefined) return { kind: "crd", name: crd };
  } else if (top === "namespaces" && rest.length === 1) {
    const ns = jsonStem(rest[0]!, isLabel);
    if (ns !== undefined) return { kind: "namespace", name: ns };
  } else if (top === "objects" && rest.length === 5) {
    const [group, version, plural, scope, file] = rest as [string, string, string, string, string];
    const objectName = jsonStem(file, isSegment);
    const scopeOk = scope === CLUSTER_SCOPE || isLabel(scope);
    if (isSegment(group) && isSegment(version) && isSegment(plural) && scopeOk && objectName !== undefined) {
      const ref: ObjectRef = { group, version, plural, name: objectName };
      if (scope !== CLUSTER_SCOPE) ref.namespace = scope;
      return { kind: "object", ref };
    }
  }
  throw bad("the name does not match the archive entry grammar");
}

/** Writer side: a caller passing an impossible name is a bug, reported before anything is written. */
function requireValid(what: string, value: string, valid: (s: string) => boolean): string {
  if (!valid(value)) {
    throw archiveInvalid(
      `cannot name an archive entry for ${what} ${quote(value)}: not a lowercase DNS name`,
      {
        entry: value,
      },
    );
  }
  return value;
}

export function crdEntryName(name: string): string {
  return `crds/${requireValid("CustomResourceDefinition", name, isSegment)}.json`;
}

export function namespaceEntryName(name: string): string {
  return `namespaces/${requireValid("Namespace", name, isLabel)}.json`;
}

export function objectEntryName(ref: ObjectRef): string {
  const group = requireValid("group", ref.group, isSegment);
  const version = requireValid("version", ref.version, isSegment);
  const plural = requireValid("resource", ref.plural, isSegment);
  const scope =
    ref.namespace === undefined ? CLUSTER_SCOPE : requireValid("namespace", ref.namespace, isLabel);
  const name = requireValid("object", ref.name, isSegment);
  return `objects/${group}/${version}/${plural}/${scope}/${name}.json`;
}

/** Objects of one resource are contiguous in an archive; this is the key they are grouped by. */
export function resourceKey(ref: Pick<ObjectRef, "group" | "version" | "plural">): string {
  return `${ref.group}/${ref.version}/${ref.plural}`;
}
