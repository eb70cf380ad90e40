/**
 * A Velero backup's custom resources into a crd-backup archive: its CRDs, the custom resources
 * (server-owned fields stripped as a snapshot strips them, status kept, the original uid beside
 * each body so owners relink on restore), and the Namespaces they live in. Streamed: the archive
 * writer gets one object at a time, and the per-resource totals are all that is kept.
 */
import type { ArchiveWriter } from "../../archive/writer.ts";
import type { ManifestResource } from "../../archive/manifest.ts";
import { quote } from "../../archive/format.ts";
import { isJsonObject, stringifyJson, type JsonObject, type JsonValue } from "../../json/json.ts";
import { cleanObject } from "../../objects/clean.ts";
import { cleanObjectText } from "../../objects/clean-text.ts";
import { veleroInvalid } from "./layout.ts";
import { scanVeleroTarball, veleroItems, type TarballSource, type VeleroScan } from "./tarball.ts";

export interface Converted {
  scan: VeleroScan;
  resources: ManifestResource[];
  /** Items that are not custom resources, by kind: counted, not imported. */
  skipped: Map<string, number>;
}

interface CrdFacts {
  kind: string;
  namespaced: boolean;
  storageVersion: string;
  servedVersions: string[];
}

const obj = (v: JsonValue | undefined): JsonObject => (isJsonObject(v) ? v : {});

function crdFacts(crd: JsonObject): CrdFacts {
  const spec = obj(crd["spec"]);
  const versions = Array.isArray(spec["versions"]) ? spec["versions"].map(obj) : [];
  const name = (v: JsonObject) => (typeof v["name"] === "string" ? v["name"] : "");
  return {
    kind: String(obj(spec["names"])["kind"] ?? ""),
    namespaced: spec["scope"] !== "Cluster",
    storageVersion: name(versions.find((v) => v["storage"] === true) ?? {}),
    servedVersions: versions.filter((v) => v["served"] !== false).map(name),
  };
}

/** Writes the backup's custom resources into `writer`; the caller finishes the writer. */
export async function convertVeleroBackup(
  writer: ArchiveWriter,
  backup: string,
  source: TarballSource,
  scanned?: VeleroScan,
): Promise<Converted> {
  const scan = scanned ?? (await scanVeleroTarball(backup, source));
  const facts = new Map<string, CrdFacts>();
  for (const name of [...scan.crds.keys()].sort()) {
    const crd = scan.crds.get(name)!;
    facts.set(name, crdFacts(crd));
    const { object, uid } = cleanObject(crd, { dropStatus: true });
    await writer.addCrd(name, Buffer.from(stringifyJson(object)), { uid });
  }

  const totals = new Map<string, ManifestResource>();
  const namespaces = new Set<string>();
  const skipped = new Map<string, number>();
  for await (const item of veleroItems(backup, source, scan, skipped)) {
    const what = quote(`${item.resource}/${item.name}`);
    // Velero's items are untrusted: the byte-level cleaner below assumes well-formed JSON, so the
    // native parser checks it first (its numbers are thrown away, the bytes are what is kept)
    let parsed: unknown;
    try {
      parsed = JSON.parse(item.body.toString("utf8"));
    } catch {
      throw veleroInvalid(backup, `${what} is not JSON`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw veleroInvalid(backup, `${what} is not a JSON object`);
    // as a snapshot cleans a LIST page's items: server-owned metadata cut out, every other byte kept
    const cleaned = cleanObjectText(item.body, 0);
    const apiVersion = cleaned.apiVersion ?? "";
    const [group, version] = apiVersion.split("/");
    if (group !== item.group || version === undefined)
      throw veleroInvalid(
        backup,
        `${what} has apiVersion ${quote(apiVersion)}, not in group ${quote(item.group)}`,
      );
    if (cleaned.name !== item.name)
      throw veleroInvalid(backup, `${what} holds an object named ${quote(cleaned.name)}`);
    const crd = facts.get(item.resource)!;
    const key = `${item.resource}/${version}`;
    let resource = totals.get(key);
    if (!resource) {
      resource = {
        group,
        version,
        plural: item.plural,
        ...crd,
        count: 0,
        bytes: 0,
        listResourceVersion: "",
        consistent: true,
        errors: [],
      };
      totals.set(key, resource);
    }
    const ref = {
      group,
      version,
      plural: item.plural,
      name: item.name,
      ...(item.namespace ? { namespace: item.namespace } : {}),
    };
    const size = await writer.addObject(ref, cleaned.body, { uid: cleaned.uid, fields: cleaned });
    resource.count += 1;
    resource.bytes += size;
    if (item.namespace) namespaces.add(item.namespace);
  }
  // a CRD without objects in the backup is still a resource of the snapshot, at its storage version
  for (const [name, crd] of facts) {
    if ([...totals.keys()].some((k) => k.startsWith(`${name}/`))) continue;
    const dot = name.indexOf(".");
    totals.set(`${name}/${crd.storageVersion}`, {
      group: name.slice(dot + 1),
      version: crd.storageVersion,
      plural: name.slice(0, dot),
      ...crd,
      count: 0,
      bytes: 0,
      listResourceVersion: "",
      consistent: true,
      errors: [],
    });
  }

  for (const ns of [...namespaces].sort()) {
    // a backup of only some resources may not hold the Namespace: a bare one is what restore would create
    const stored = scan.namespaces.get(ns) ?? { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } };
    const { object, uid } = cleanObject(stored, { dropStatus: true });
    await writer.addNamespace(ns, Buffer.from(stringifyJson(object)), { uid });
  }
  const resources = [...totals.values()].sort((a, b) =>
    `${a.group}/${a.plural}/${a.version}`.localeCompare(`${b.group}/${b.plural}/${b.version}`),
  );
  return { scan, resources, skipped };
}
