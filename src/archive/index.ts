/** The archive format: names, manifest, streaming writer and verifying reader (docs/format.md). */
export {
  ARCHIVE_FORMAT,
  ARCHIVE_KEYS,
  ARCHIVE_VERSIONS,
  FORMAT_VERSION,
  HEADER_ENTRY,
  INDEX_ENTRIES,
  MANIFEST_KEY,
  MAX_ENTRY_SIZE,
  MAX_INDEX_SIZE,
  MAX_NAME_BYTES,
  PAX_SHA256,
  PAX_UID,
  isSnapshotId,
  newSnapshotId,
} from "./format.ts";
export type {
  ArchiveExpectation,
  ArchiveHeader,
  ArchiveSummary,
  ArchiveTotals,
  ArchiveVersion,
  ArchiveKey,
  EntryCounts,
  EntryKind,
  IndexRecord,
  ObjectRef,
} from "./format.ts";
export { crdEntryName, namespaceEntryName, objectEntryName, parseEntryName, resourceKey } from "./names.ts";
export type { ContentEntryName, ParsedEntryName } from "./names.ts";
export { expectedArchive, isEncrypted, parseManifest, plainManifest, serializeManifest } from "./manifest.ts";
export type {
  EncryptedManifest,
  Manifest,
  ManifestEncryption,
  ManifestResource,
  PlainManifest,
  ResourceError,
  SealedManifest,
  StoredManifest,
} from "./manifest.ts";
export { ArchiveWriter } from "./writer.ts";
export type { ArchiveWriterOptions, EntryBody, EntryMeta } from "./writer.ts";
export { readArchive, verifyArchive } from "./reader.ts";
export type { ArchiveEntry, ArchiveSource } from "./reader.ts";
