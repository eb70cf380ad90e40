import type { KubeClient } from "./client.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "./json.ts";
import { listPages } from "./list.ts";

export const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/** What crd-backup needs to know of one CustomResourceDefinition (small: the CRD itself is not kept). */
export interface CrdInfo {
  name: string;
  group: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  storageVersion: string;
  servedVersions: string[];
  /** The version instances are listed at: the storage version when served, else the first served one. */
  listVersion: string | undefined;
  /** Versions that have a /status subresource. */
  statusVersions: string[];
  established: boolean;
  /** Why the CRD cannot be listed (not Established, nothing served), or undefined. */
  problem: string | undefined;
}

function str(v: JsonValue | undefined): string {
  return typeof v === "string" ? v : "";
}

function obj(v: JsonValue | undefined): JsonObject {
  return isJsonObject(v) ? v : {};
}

export function describeCrd(raw: JsonObject): CrdInfo {
  const spec = obj(raw["spec"]);
  const names = obj(spec["names"]);
  const versions = (Array.isArray(spec["versions"]) ? spec["versions"] : []).filter(isJsonObject);
  const served = versions.filter((v) => v["served"] === true).map((v) => str(v["name"]));
  const storage = str(versions.find((v) => v["storage"] === true)?.["name"]);
  const conditions = (
    Array.isArray(obj(raw["status"])["conditions"]) ? (obj(raw["status"])["conditions"] as JsonValue[]) : []
  ).filter(isJsonObject);
  const established = conditions.some((c) => c["type"] === "Established" && c["status"] === "True");
  const listVersion = served.includes(storage) ? storage : served[0];
  const name = str(obj(raw["metadata"])["name"]);
  return {
    name,
    group: str(spec["group"]),
    plural: str(names["plural"]),
    kind: str(names["kind"]),
    namespaced: str(spec["scope"]) !== "Cluster",
    storageVersion: storage,
    servedVersions: served,
    listVersion,
    statusVersions: versions
      .filter((v) => isJsonObject(obj(v["subresources"])["status"]))
      .map((v) => str(v["name"])),
    established,
    problem: !established ? "not Established" : listVersion === undefined ? "serves no version" : undefined,
  };
}

/**
 * Every CRD in the cluster, paged like any other list. CRDs can be large (hundreds of KiB each,
 * and Crossplane providers install hundreds), so each one is handed to `onCrd` as its page
 * arrives and only its summary is kept.
 */
export async function discoverCrds(
  client: KubeClient,
  options: { pageSize: number; signal?: AbortSignal },
  onCrd: (info: CrdInfo, raw: JsonObject) => Promise<void> | void = () => undefined,
): Promise<CrdInfo[]> {
  const crds: CrdInfo[] = [];
  for await (const page of listPages(client, CRD_PATH, options)) {
    for (const raw of page) {
      const info = describeCrd(raw);
      await onCrd(info, raw);
      crds.push(info);
    }
  }
  return crds.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The collection path of a custom resource, cluster-wide. */
export function collectionPath(group: string, version: string, plural: string, namespace?: string): string {
  return namespace
    ? `/apis/${group}/${version}/namespaces/${namespace}/${plural}`
    : `/apis/${group}/${version}/${plural}`;
}
