/**
 * The manifest's types (manifest.ts parses, checks and writes them, and re-exports them): a
 * PlainManifest with the snapshot's content, and the SealedManifest an encrypted one stores.
 */
import type { JsonObject } from "../json/json.ts";
import type { ArchiveKey, ArchiveVersion, EntryCounts } from "./format.ts";

export interface ResourceError {
  reason: string;
  message: string;
}

export interface ManifestResource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  storageVersion: string;
  servedVersions: string[];
  count: number;
  bytes: number;
  listResourceVersion: string;
  /** false if a continue token expired and the listing had to restart. */
  consistent: boolean;
  errors: ResourceError[];
}

/** A Namespace that holds captured objects but could not be read (a restore creates it bare). */
export interface NamespaceError extends ResourceError {
  namespace: string;
}

/**
 * A snapshot's manifest with its content: what a plain snapshot stores (format version 1), what an
 * encrypted one seals, and what opening an encrypted one gives back (crypto/manifest.ts). Only this
 * has resources, counts and the plain archive's digest: code that needs them takes a PlainManifest.
 */
export interface PlainManifest {
  /** The archive's format version: 1 (archive.tar.gz) or 3 (archive.tar.zst). */
  formatVersion: ArchiveVersion;
  toolVersion: string;
  snapshotId: string;
  status: "complete" | "partial";
  cluster: { uid: string; server: string; serverVersion: string };
  startedAt: string;
  finishedAt: string;
  options: JsonObject;
  resources: ManifestResource[];
  /** Absent in manifests written before it was added: read as none. */
  namespaceErrors: NamespaceError[];
  counts: EntryCounts;
  archive: { key: ArchiveKey; size: number; sha256: string; entries: number };
  index: { sha256: string; entries: number };
  /**
   * Present when the snapshot is stored encrypted (docs/format.md "Encryption"): this manifest was
   * opened from its sealed part, or is about to be sealed. Metadata only: the fields above are real.
   */
  encryption?: ManifestEncryption;
  /** Never set: tells a PlainManifest from a SealedManifest (`if (m.sealed)`). */
  sealed?: undefined;
}

/** The content manifest; the name code written before StoredManifest uses (the same type). */
export type Manifest = PlainManifest;

/**
 * An encrypted snapshot's manifest as stored (format version 2), not opened: only what its plain
 * part holds, which is what listing, retention and integrity need. Its content is the version-1
 * manifest in `encryption.sealed`; openManifest (crypto/manifest.ts) turns it into a PlainManifest.
 */
export interface SealedManifest {
  sealed: true;
  formatVersion: typeof ENCRYPTED_FORMAT_VERSION;
  toolVersion: string;
  snapshotId: string;
  status: "complete" | "partial";
  /** The uid only: the server is sealed. */
  cluster: { uid: string };
  startedAt: string;
  finishedAt: string;
  encryption: ManifestEncryption;
}

/** A manifest as storage holds it: plain, or sealed (encrypted and not opened). */
export type StoredManifest = PlainManifest | SealedManifest;

/** A manifest of an encrypted snapshot, sealed or opened: what reading its stored age file needs. */
export type EncryptedManifest = SealedManifest | (PlainManifest & { encryption: ManifestEncryption });

/** The manifest format version of encrypted snapshots; unencrypted ones stay version 1. */
export const ENCRYPTED_FORMAT_VERSION = 2;

/** Stored archive keys of encrypted snapshots: rekey writes a new one beside the old, never over it. */
export const ENCRYPTED_ARCHIVE_KEY = /^archive(\.[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})?\.tar\.(gz|zst)\.age$/;

/**
 * How an encrypted snapshot is stored: what its plain part says beside id, times, status and
 * cluster uid. The same on a SealedManifest and on the PlainManifest opened from it.
 */
export interface ManifestEncryption {
  scheme: "age";
  /** The age recipients (public keys) the archive and `sealed` are encrypted to. */
  recipients: string[];
  /** The stored age file: its key under `snapshots/<id>/`, its size and SHA-256. */
  stored: { key: string; size: number; sha256: string };
  /** The version-1 manifest of the plain archive, as an ASCII-armored age file. */
  sealed: string;
}
