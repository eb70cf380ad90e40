/**
 * manifest.json: the record that makes a snapshot exist. Parsing checks the format version before
 * anything else (a newer format may have a different shape), then every field and invariant, so the
 * rest of crd-backup can trust the value: a PlainManifest with its content, or for an encrypted
 * snapshot a SealedManifest that holds only its plain part. Serialising runs the same checks, so a
 * manifest that would be refused is never written.
 */
import type { JsonObject } from "../json/json.ts";
import { isJsonObject, parseJson } from "../json/json.ts";
import {
  ARCHIVE_KEYS,
  FORMAT_VERSION,
  archiveInvalid,
  checkFormatVersion,
  isSnapshotId,
  quote,
  type ArchiveExpectation,
  type ArchiveTotals,
  type ArchiveVersion,
} from "./format.ts";
import { checkNames, checkTimes, Fields } from "./manifest-fields.ts";

export type {
  EncryptedManifest,
  Manifest,
  ManifestEncryption,
  ManifestResource,
  NamespaceError,
  PlainManifest,
  ResourceError,
  SealedManifest,
  StoredManifest,
} from "./manifest-types.ts";
export { ENCRYPTED_ARCHIVE_KEY, ENCRYPTED_FORMAT_VERSION } from "./manifest-types.ts";
import {
  ENCRYPTED_ARCHIVE_KEY,
  ENCRYPTED_FORMAT_VERSION,
  type EncryptedManifest,
  type PlainManifest,
  type SealedManifest,
  type StoredManifest,
} from "./manifest-types.ts";

/** Whether `m` is of an encrypted snapshot (sealed, or opened with its encryption kept). */
export function isEncrypted(m: StoredManifest): m is EncryptedManifest {
  return m.encryption !== undefined;
}

function validate(doc: JsonObject): StoredManifest {
  const snapshotId = isSnapshotId(doc["snapshotId"]) ? doc["snapshotId"] : undefined;
  if (doc["formatVersion"] === ENCRYPTED_FORMAT_VERSION) return validateEncrypted(doc, snapshotId);
  return validatePlain(doc, snapshotId);
}

function validatePlain(doc: JsonObject, snapshotId: string | undefined): PlainManifest {
  const version = doc["formatVersion"];
  checkFormatVersion(version, snapshotId, "manifest");
  // Typed explicitly so TypeScript treats f.fail() (returning never) as ending the flow.
  const f: Fields = new Fields(snapshotId === undefined ? "manifest" : `manifest of snapshot ${snapshotId}`);
  if (snapshotId === undefined) f.fail("snapshotId", "must be a snapshot ID like 20261122T041500Z-1a2b3c4d");

  const status = doc["status"];
  if (status !== "complete" && status !== "partial") f.fail("status", 'must be "complete" or "partial"');

  const c = f.object(doc["cluster"], "cluster");
  const server = f.string(c["server"], "cluster.server");
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    f.fail("cluster.server", "must be a URL");
  }
  if (url.username !== "" || url.password !== "") f.fail("cluster.server", "must not contain credentials");
  const cluster = {
    uid: f.string(c["uid"], "cluster.uid"),
    server,
    serverVersion: f.string(c["serverVersion"], "cluster.serverVersion"),
  };

  const resources = f.array(doc["resources"], "resources", (v, p) => {
    const r = f.object(v, p);
    return checkNames(f, p, {
      group: f.string(r["group"], `${p}.group`),
      version: f.string(r["version"], `${p}.version`),
      plural: f.string(r["plural"], `${p}.plural`),
      kind: f.string(r["kind"], `${p}.kind`),
      namespaced: f.boolean(r["namespaced"], `${p}.namespaced`),
      storageVersion: f.string(r["storageVersion"], `${p}.storageVersion`),
      servedVersions: f.array(r["servedVersions"], `${p}.servedVersions`, (x, q) => f.string(x, q)),
      count: f.count(r["count"], `${p}.count`),
      bytes: f.count(r["bytes"], `${p}.bytes`),
      listResourceVersion: f.string(r["listResourceVersion"], `${p}.listResourceVersion`),
      consistent: f.boolean(r["consistent"], `${p}.consistent`),
      errors: f.array(r["errors"], `${p}.errors`, (x, q) => {
        const e = f.object(x, q);
        return {
          reason: f.string(e["reason"], `${q}.reason`),
          message: f.string(e["message"], `${q}.message`),
        };
      }),
    });
  });

  const namespaceErrors =
    doc["namespaceErrors"] === undefined
      ? []
      : f.array(doc["namespaceErrors"], "namespaceErrors", (x, q) => {
          const e = f.object(x, q);
          return {
            namespace: f.string(e["namespace"], `${q}.namespace`),
            reason: f.string(e["reason"], `${q}.reason`),
            message: f.string(e["message"], `${q}.message`),
          };
        });

  const n = f.object(doc["counts"], "counts");
  const counts = {
    crds: f.count(n["crds"], "counts.crds"),
    namespaces: f.count(n["namespaces"], "counts.namespaces"),
    objects: f.count(n["objects"], "counts.objects"),
  };
  const a = f.object(doc["archive"], "archive");
  const key = ARCHIVE_KEYS[version];
  if (a["key"] !== key) f.fail("archive.key", `must be ${quote(key)} in format version ${version}`);
  const archive = {
    key,
    size: f.count(a["size"], "archive.size"),
    sha256: f.sha256(a["sha256"], "archive.sha256"),
    entries: f.count(a["entries"], "archive.entries"),
  };
  const i = f.object(doc["index"], "index");
  const index = {
    sha256: f.sha256(i["sha256"], "index.sha256"),
    entries: f.count(i["entries"], "index.entries"),
  };

  // The invariants of docs/format.md: a manifest that breaks one was not written by a correct writer.
  const objectSum = resources.reduce((sum, r) => sum + r.count, 0);
  if (counts.objects !== objectSum)
    f.fail("counts.objects", `is ${counts.objects} but resources[].count add up to ${objectSum}`);
  const indexed = counts.crds + counts.namespaces + counts.objects;
  if (index.entries !== indexed)
    f.fail("index.entries", `is ${index.entries} but counts add up to ${indexed}`);
  if (archive.entries !== index.entries + 2)
    f.fail("archive.entries", `must be index.entries + 2 (${index.entries + 2})`);
  if (status === "complete" && resources.some((r) => r.errors.length > 0)) {
    f.fail("status", 'is "complete" but a resource has errors');
  }
  if (status === "complete" && namespaceErrors.length > 0) {
    f.fail("status", 'is "complete" but a namespace could not be captured');
  }

  checkTimes(f, snapshotId, f.time(doc["startedAt"], "startedAt"), f.time(doc["finishedAt"], "finishedAt"));
  return {
    formatVersion: version,
    toolVersion: f.string(doc["toolVersion"], "toolVersion"),
    snapshotId,
    status,
    cluster,
    startedAt: f.time(doc["startedAt"], "startedAt"),
    finishedAt: f.time(doc["finishedAt"], "finishedAt"),
    options: f.object(doc["options"], "options"),
    resources,
    namespaceErrors,
    counts,
    archive,
    index,
  };
}

/** The plain part of a version-2 (encrypted) manifest: a SealedManifest, its content unopened. */
function validateEncrypted(doc: JsonObject, snapshotId: string | undefined): SealedManifest {
  const f: Fields = new Fields(snapshotId === undefined ? "manifest" : `manifest of snapshot ${snapshotId}`);
  if (snapshotId === undefined) f.fail("snapshotId", "must be a snapshot ID like 20261122T041500Z-1a2b3c4d");
  const status = doc["status"];
  if (status !== "complete" && status !== "partial") f.fail("status", 'must be "complete" or "partial"');
  const c = f.object(doc["cluster"], "cluster");
  const a = f.object(doc["archive"], "archive");
  const key = f.string(a["key"], "archive.key");
  if (!ENCRYPTED_ARCHIVE_KEY.test(key))
    f.fail("archive.key", "must be archive.tar.zst.age, archive.tar.gz.age or archive.<id>.tar.(zst|gz).age");
  const e = f.object(doc["encryption"], "encryption");
  if (e["scheme"] !== "age") f.fail("encryption.scheme", 'must be "age"');
  const recipients = f.array(e["recipients"], "encryption.recipients", (x, q) => f.string(x, q));
  if (recipients.length === 0) f.fail("encryption.recipients", "must name at least one recipient");
  const sealed = f.string(e["sealed"], "encryption.sealed");
  if (!sealed.startsWith("-----BEGIN AGE ENCRYPTED FILE-----"))
    f.fail("encryption.sealed", "must be an armored age file");
  checkTimes(f, snapshotId, f.time(doc["startedAt"], "startedAt"), f.time(doc["finishedAt"], "finishedAt"));
  return {
    sealed: true,
    formatVersion: ENCRYPTED_FORMAT_VERSION,
    toolVersion: f.string(doc["toolVersion"], "toolVersion"),
    snapshotId,
    status,
    cluster: { uid: f.string(c["uid"], "cluster.uid") },
    startedAt: f.time(doc["startedAt"], "startedAt"),
    finishedAt: f.time(doc["finishedAt"], "finishedAt"),
    encryption: {
      scheme: "age",
      recipients,
      stored: {
        key,
        size: f.count(a["size"], "archive.size"),
        sha256: f.sha256(a["sha256"], "archive.sha256"),
      },
      sealed,
    },
  };
}

/**
 * The plain part of an encrypted snapshot's manifest: what is stored in plain text (and what a
 * SealedManifest holds). An opened manifest gives back the part it was opened from.
 */
export function sealedPart(m: EncryptedManifest): SealedManifest {
  if (m.sealed) return m;
  return {
    sealed: true,
    formatVersion: ENCRYPTED_FORMAT_VERSION,
    toolVersion: m.toolVersion,
    snapshotId: m.snapshotId,
    status: m.status,
    cluster: { uid: m.cluster.uid },
    startedAt: m.startedAt,
    finishedAt: m.finishedAt,
    encryption: m.encryption,
  };
}

/** The JSON of a version-2 manifest: only what listing, retention and integrity need. */
function encryptedDocument(m: SealedManifest): JsonObject {
  const e = m.encryption;
  return {
    formatVersion: ENCRYPTED_FORMAT_VERSION,
    toolVersion: m.toolVersion,
    snapshotId: m.snapshotId,
    status: m.status,
    cluster: { uid: m.cluster.uid },
    startedAt: m.startedAt,
    finishedAt: m.finishedAt,
    archive: { key: e.stored.key, size: e.stored.size, sha256: e.stored.sha256 },
    encryption: { scheme: e.scheme, recipients: e.recipients, sealed: e.sealed },
  };
}

/**
 * Parse and validate manifest.json; throws ARCHIVE_INVALID with a one-line message. A version-2
 * (encrypted) manifest is a SealedManifest: openManifest (crypto/manifest.ts) gives its content.
 */
export function parseManifest(text: string): StoredManifest {
  let doc;
  try {
    // Lossless: options may hold numbers a float64 would change.
    doc = parseJson(text);
  } catch {
    throw archiveInvalid("manifest is not valid JSON");
  }
  if (!isJsonObject(doc)) throw archiveInvalid("manifest is not a JSON object");
  return validate(doc);
}

/**
 * The manifest of a snapshot that must be plain (a point in time's, a test's): a sealed one is
 * ARCHIVE_INVALID here. Where a snapshot may be encrypted, openManifest (crypto/manifest.ts) opens it.
 */
export function plainManifest(m: StoredManifest): PlainManifest {
  if (m.sealed)
    throw archiveInvalid(`manifest of snapshot ${m.snapshotId} is encrypted where a plain one was expected`, {
      snapshotId: m.snapshotId,
    });
  return m;
}

/**
 * manifest.json text: validated, keys in the documented order, two-space indented, final newline.
 * A manifest of an encrypted snapshot (sealed, or opened and so carrying its encryption) is written
 * as its plain part, the version-2 document; any other as the version-1 document.
 */
export function serializeManifest(manifest: StoredManifest): string {
  if (isEncrypted(manifest)) {
    const doc = encryptedDocument(sealedPart(manifest));
    validate(doc);
    return `${JSON.stringify(doc, null, 2)}\n`;
  }
  // Round-tripping through validate fixes the key order and refuses what a reader would refuse.
  const checked = validate(manifest as unknown as JsonObject);
  return `${JSON.stringify(checked, null, 2)}\n`;
}

/** The archive object in storage: the age file of an encrypted snapshot, else the plain archive. */
export function storedArchive(manifest: StoredManifest): { key: string; size: number; sha256: string } {
  return isEncrypted(manifest) ? manifest.encryption.stored : manifest.archive;
}

/** What the (plain) archive of a snapshot must match, for readArchive and verifyArchive. */
export function expectedArchive(manifest: PlainManifest): ArchiveExpectation {
  return {
    snapshotId: manifest.snapshotId,
    sha256: manifest.archive.sha256,
    size: manifest.archive.size,
    entries: manifest.archive.entries,
    indexSha256: manifest.index.sha256,
    indexEntries: manifest.index.entries,
    counts: manifest.counts,
  };
}

/** The manifest's fields that a written archive fixes: its format, counts, digest and index. */
export function archiveFields(
  totals: ArchiveTotals,
  formatVersion: ArchiveVersion = FORMAT_VERSION,
): Pick<PlainManifest, "formatVersion" | "counts" | "archive" | "index"> {
  return {
    formatVersion,
    counts: totals.counts,
    archive: {
      key: ARCHIVE_KEYS[formatVersion],
      size: totals.size,
      sha256: totals.sha256,
      entries: totals.entries,
    },
    index: { sha256: totals.indexSha256, entries: totals.indexEntries },
  };
}
