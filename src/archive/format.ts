/**
 * Constants and types of the snapshot format (docs/format.md, versions 1 and 3). Everything a
 * reader or writer must agree on lives here, so a format change starts in one file.
 */
import { randomBytes } from "node:crypto";
import { CrdBackupError } from "../errors.ts";

/**
 * The format version written. Version 1 (gzip, a pax header with the SHA-256 on every entry,
 * index.jsonl) is read forever; version 2 is the encrypted manifest's envelope (manifest.ts), never
 * an archive's; version 3 is zstd, ustar headers, and the hashes in index.sha256 (docs/format.md).
 */
export const FORMAT_VERSION = 3;
export type ArchiveVersion = 1 | 3;
export const ARCHIVE_VERSIONS: readonly ArchiveVersion[] = [1, 3];
export const ARCHIVE_FORMAT = "crd-backup-archive";

/** Storage keys relative to `snapshots/<id>/`. */
export const ARCHIVE_KEYS = { 1: "archive.tar.gz", 3: "archive.tar.zst" } as const;
export type ArchiveKey = (typeof ARCHIVE_KEYS)[ArchiveVersion];
export const MANIFEST_KEY = "manifest.json";

/** Fixed entry names: the header is always first, the index always last. */
export const HEADER_ENTRY = "crd-backup-archive.json";
export const INDEX_ENTRIES = { 1: "index.jsonl", 3: "index.sha256" } as const;
export const CLUSTER_SCOPE = "_cluster";

/** The pax record carrying the SHA-256 of each entry body (version 1; version 3 lists it in index.sha256). */
export const PAX_SHA256 = "CRDBACKUP.sha256";
/**
 * The pax record carrying an object's uid in the source cluster. Bodies lose metadata.uid (the API
 * server owns it), but restore needs it to relink owner references, so it travels beside the body.
 */
export const PAX_UID = "CRDBACKUP.uid";
/** Kubernetes uids are UUIDs; this is looser, but keeps a uid one safe token. */
export const UID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Untrusted-input limits: checked from the tar header, before a body is read. */
export const MAX_NAME_BYTES = 1024;
export const MAX_ENTRY_SIZE = 16 * 1024 * 1024;
/** The index grows with the object count and is streamed, never buffered, so it may be larger. */
export const MAX_INDEX_SIZE = 4 * 1024 * 1024 * 1024;

export const SNAPSHOT_ID_PATTERN = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/;
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export type EntryKind = "header" | "crd" | "namespace" | "object" | "index";

/** Where an object sits in the archive: its resource, and its namespace unless cluster-scoped. */
export interface ObjectRef {
  group: string;
  version: string;
  plural: string;
  namespace?: string;
  name: string;
}

/** Body of crd-backup-archive.json. */
export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  formatVersion: number;
  snapshotId: string;
}

/** One line of index.jsonl. Field order here is the canonical serialisation order. */
export interface IndexRecord {
  entry: string;
  sha256: string;
  size: number;
  kind: "crd" | "namespace" | "object";
  uid?: string;
  apiVersion?: string;
  resourceKind?: string;
  group?: string;
  version?: string;
  plural?: string;
  namespace?: string;
  name: string;
  ownerUids?: string[];
}

export interface EntryCounts {
  crds: number;
  namespaces: number;
  objects: number;
}

/** What the writer reports, and what the manifest records, about a finished archive. */
export interface ArchiveTotals {
  /** SHA-256 and size of the compressed bytes, as stored. */
  sha256: string;
  size: number;
  /** Tar entries, header and index included. */
  entries: number;
  indexSha256: string;
  /** Lines of index.jsonl: one per crd, namespace and object entry. */
  indexEntries: number;
  counts: EntryCounts;
}

/** What a reader checks the archive against; usually taken from the manifest. */
export interface ArchiveExpectation {
  sha256: string;
  size: number;
  snapshotId?: string;
  entries?: number;
  indexSha256?: string;
  indexEntries?: number;
  counts?: EntryCounts;
}

export interface ArchiveSummary {
  snapshotId: string;
  sha256: string;
  size: number;
  entries: number;
  crds: number;
  namespaces: number;
  objects: number;
  indexSha256: string;
}

/**
 * A new snapshot ID for `at`: the UTC second, then 8 hex digits whose top 10 bits are the
 * millisecond and the other 22 random. IDs of snapshots started in the same second still sort by
 * start time (fixed-width lowercase hex sorts as its number), and two started in the same
 * millisecond still differ.
 */
export function newSnapshotId(at: Date = new Date()): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const suffix = at.getUTCMilliseconds() * 2 ** 22 + (randomBytes(4).readUInt32BE(0) >>> 10);
  return `${stamp}-${suffix.toString(16).padStart(8, "0")}`;
}

/** The instant a snapshot ID names: its UTC second, plus the millisecond its top 10 bits hold. */
export function snapshotIdTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([0-9a-f]{8})$/.exec(id);
  if (!m) throw new CrdBackupError("USAGE", `"${id}" is not a snapshot id`);
  const ms = Math.min(999, Math.floor(parseInt(m[7]!, 16) / 2 ** 22));
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms));
}

/**
 * How far ahead of this machine's clock a stored time may be before it is refused: clocks of the
 * machines that write and read a location disagree a little, a forged date lies by far more.
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Whether a stored time lies beyond this machine's now plus the allowed skew. */
export function inTheFuture(t: Date, now: Date = new Date()): boolean {
  return t.getTime() > now.getTime() + CLOCK_SKEW_MS;
}

export function isSnapshotId(value: unknown): value is string {
  return typeof value === "string" && SNAPSHOT_ID_PATTERN.test(value);
}

/** Every bad-archive failure is this one error code; the message is one line and names the entry. */
export function archiveInvalid(
  message: string,
  context: Record<string, string | number | undefined> = {},
): CrdBackupError {
  return new CrdBackupError("ARCHIVE_INVALID", message, context);
}

/** Refuse a version this code does not understand, before reading anything else. */
export function checkFormatVersion(
  version: unknown,
  snapshotId: string | undefined,
  where: string,
): asserts version is ArchiveVersion {
  const who = snapshotId === undefined ? where : `snapshot ${snapshotId}`;
  if (typeof version === "number" && Number.isInteger(version) && version > FORMAT_VERSION) {
    throw archiveInvalid(
      `${who}: archive format version ${version} is newer than this crd-backup understands (${FORMAT_VERSION}); upgrade crd-backup`,
      { snapshotId, formatVersion: version },
    );
  }
  if (version === undefined) throw archiveInvalid(`${who}: formatVersion is missing`, { snapshotId });
  if (!ARCHIVE_VERSIONS.includes(version as ArchiveVersion)) {
    // A lossless parse may hand over {rawJSON: "1.0"}; show the text as written.
    const text = JSON.stringify(version) ?? String(version);
    throw archiveInvalid(`${who}: unsupported archive format version ${text}`, { snapshotId });
  }
}

/** Quote untrusted text for a one-line message: escaped and bounded. */
export function quote(text: string): string {
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  // JSON.stringify escapes quotes and control characters; these three also break lines on screen.
  return JSON.stringify(shown).replace(
    /[\u0085\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The stored name of an encrypted snapshot's archive: `archive.tar.zst.age` (version 1:
 * `.tar.gz.age`), or with a rekey's ID before the extensions.
 */
export function encryptedArchiveKey(version: ArchiveVersion, rekeyId?: string): string {
  const plain = ARCHIVE_KEYS[version];
  return rekeyId === undefined ? `${plain}.age` : plain.replace(/^archive\./, `archive.${rekeyId}.`) + ".age";
}

/**
 * Every archive name crd-backup writes under `snapshots/<id>/`, of either version, plain or
 * encrypted, with the rekey's ID (group 1) where a rekey wrote it.
 */
export const ARCHIVE_NAME = /^archive(?:\.([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}))?\.tar\.(?:gz|zst)(?:\.age)?$/;
