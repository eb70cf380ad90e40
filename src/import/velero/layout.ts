/**
 * The paths inside a Velero backup tarball (Velero's pkg/apis/velero/v1/constants.go and
 * pkg/backup/item_backupper.go): `metadata/version`, and every item as JSON at
 * `resources/<resource>[.<group>]/(cluster|namespaces/<ns>)/<name>.json`, again under
 * `resources/<resource>[.<group>]/<version>-preferredversion/...`, and with the
 * EnableAPIGroupVersions feature under `<version>/` for the other versions. Paths are untrusted:
 * one that could climb out of the tree is refused, not skipped.
 */
import { CrdBackupError } from "../../errors.ts";
import { quote } from "../../archive/format.ts";

export const VERSION_PATH = "metadata/version";
const PREFERRED = "-preferredversion";

export type VeleroPath =
  | { kind: "version" }
  | {
      kind: "item";
      /** The resource directory: `<plural>.<group>`, or `<plural>` for the core group. */
      resource: string;
      /** The tree the item is in: legacy (no version), preferred (that version), or another version. */
      tree:
        { kind: "legacy" } | { kind: "preferred"; version: string } | { kind: "version"; version: string };
      namespace?: string;
      name: string;
    }
  /** Anything else Velero stores in a tarball (none today): ignored. */
  | { kind: "other" };

const SEGMENT = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;
/** Object names are DNS subdomains, but some resources allow more (e.g. ':' in RBAC names). */
const NAME = /^[A-Za-z0-9][-A-Za-z0-9._:@+]*$/;

export function veleroInvalid(backup: string, why: string): CrdBackupError {
  return new CrdBackupError("ARCHIVE_INVALID", `Velero backup ${quote(backup)}: ${why}`, { backup });
}

export function parseVeleroPath(backup: string, path: string): VeleroPath {
  const bad = (why: string) => veleroInvalid(backup, `tarball entry ${quote(path)} is not allowed: ${why}`);
  if (path.length === 0 || path.length > 1024) throw bad("the name is empty or longer than 1024 bytes");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(path)) throw bad("the name contains a control character or a backslash");
  if (path.startsWith("/")) throw bad("the name is an absolute path");
  const parts = path.replace(/\/$/, "").split("/");
  if (parts.some((p) => p === ".." || p === "." || p === ""))
    throw bad('the name has an empty, "." or ".." part');
  if (path === VERSION_PATH) return { kind: "version" };
  if (parts[0] !== "resources") return { kind: "other" };
  const [, resource, ...rest] = parts;
  if (resource === undefined || !SEGMENT.test(resource))
    throw bad("the resource directory is not a resource name");
  let tree: Extract<VeleroPath, { kind: "item" }>["tree"] = { kind: "legacy" };
  if (rest[0] !== undefined && rest[0] !== "cluster" && rest[0] !== "namespaces") {
    const dir = rest.shift()!;
    const version = dir.endsWith(PREFERRED) ? dir.slice(0, -PREFERRED.length) : dir;
    if (!SEGMENT.test(version)) throw bad("the version directory is not a version");
    tree = dir.endsWith(PREFERRED) ? { kind: "preferred", version } : { kind: "version", version };
  }
  const file = (f: string | undefined) => {
    if (f === undefined || !f.endsWith(".json")) throw bad("an item must be a .json file");
    const name = f.slice(0, -".json".length);
    if (!NAME.test(name)) throw bad("the item's name is not an object name");
    return name;
  };
  if (rest[0] === "cluster" && rest.length === 2)
    return { kind: "item", resource, tree, name: file(rest[1]) };
  if (rest[0] === "namespaces" && rest.length === 3) {
    const namespace = rest[1]!;
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace))
      throw bad("the namespace is not a namespace name");
    return { kind: "item", resource, tree, namespace, name: file(rest[2]) };
  }
  throw bad(
    "not where Velero puts items (resources/<resource>/[<version>-preferredversion/](cluster|namespaces/<ns>)/<name>.json)",
  );
}

/** `<plural>.<group>` → its parts; the core group has no dot. */
export function splitResource(resource: string): { plural: string; group: string } {
  const dot = resource.indexOf(".");
  return dot === -1
    ? { plural: resource, group: "" }
    : { plural: resource.slice(0, dot), group: resource.slice(dot + 1) };
}

/** Velero's tarball format versions this reader knows: 1.x (1.0.0 and 1.1.0 as of Velero 1.18). */
export function checkVeleroVersion(backup: string, text: string): string {
  const version = text.trim();
  if (!/^1\.\d+\.\d+$/.test(version))
    throw veleroInvalid(
      backup,
      `unknown backup format version ${quote(version)} in ${VERSION_PATH} (this crd-backup reads 1.x)`,
    );
  return version;
}
