/**
 * Where each exported manifest goes, relative to the export directory:
 *
 *   _crds/<crd-name>.yaml                         CustomResourceDefinitions
 *   _namespaces/<name>.yaml                       Namespaces (plain v1 manifests)
 *   <group>/<plural>/<namespace>/<name>.yaml      namespaced objects
 *   <group>/<plural>/<name>.yaml                  cluster-scoped objects
 *
 * `_crds` and `_namespaces` cannot be API groups (a group starts with a letter or digit), and a
 * namespace directory cannot be mistaken for a file (namespaces have no dots). Every component
 * comes from the archive, which is untrusted: the reader has checked entry names against the
 * format's grammar already, and each component is checked again here before it becomes a path.
 */
import type { ObjectRef } from "../archive/format.ts";
import { CrdBackupError } from "../errors.ts";

export type ExportFormat = "yaml" | "json";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["yaml", "json"];

export const CRDS_DIR = "_crds";
export const NAMESPACES_DIR = "_namespaces";

/** Lowercase DNS names (RFC 1123 subdomains and labels): no `/`, `\`, NUL, `..`, nothing absolute. */
const COMPONENT = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;
const MAX_COMPONENT = 253;
/** Namespaces are DNS labels: no dots, so a namespace directory never looks like `<name>.yaml`. */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_LABEL = 63;

/** `s` as one path component, or ARCHIVE_INVALID: never `..`, `.`, empty, or anything with a separator. */
export function safeComponent(s: string, what: string): string {
  const ok =
    what === "namespace"
      ? s.length <= MAX_LABEL && LABEL.test(s)
      : s.length <= MAX_COMPONENT && COMPONENT.test(s) && !s.includes("..");
  if (!ok) {
    throw new CrdBackupError(
      "ARCHIVE_INVALID",
      `cannot export ${what} ${JSON.stringify(s.slice(0, 200))}: not a valid Kubernetes name`,
    );
  }
  return s;
}

export type ExportItem =
  { kind: "crd"; name: string } | { kind: "namespace"; name: string } | { kind: "object"; ref: ObjectRef };

/** The manifest's path relative to the export directory, with `/` separators. */
export function exportPath(item: ExportItem, format: ExportFormat): string {
  const file = (name: string, what: string) => `${safeComponent(name, what)}.${format}`;
  if (item.kind === "crd") return `${CRDS_DIR}/${file(item.name, "CRD")}`;
  if (item.kind === "namespace") return `${NAMESPACES_DIR}/${file(item.name, "namespace")}`;
  const { group, plural, namespace, name } = item.ref;
  const parts = [safeComponent(group, "API group"), safeComponent(plural, "resource")];
  if (namespace !== undefined) parts.push(safeComponent(namespace, "namespace"));
  parts.push(file(name, "object"));
  return parts.join("/");
}
