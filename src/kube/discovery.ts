import { setTimeout as sleep } from "node:timers/promises";
import { CrdBackupError } from "../errors.ts";
import type { KubeClient } from "./client.ts";
import { isJsonObject, parseJson, type JsonObject, type JsonValue } from "../json/json.ts";
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

/** Whether the CRD's status has condition `type` True. */
export function crdCondition(raw: JsonObject, type: string): boolean {
  const conditions = obj(raw["status"])["conditions"];
  return (
    Array.isArray(conditions) &&
    conditions.some((c) => isJsonObject(c) && c["type"] === type && c["status"] === "True")
  );
}

/**
 * Waits until the API server serves a CRD: Established (its storage and handlers are up) and
 * NamesAccepted (no clash with another CRD's names). CONFLICT when it does not within `timeoutMs`.
 */
export async function waitForCrdReady(
  client: KubeClient,
  name: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const raw = parseJson(
      (await client.request({ path: `${CRD_PATH}/${name}`, signal: options.signal })).text,
    );
    if (isJsonObject(raw) && crdCondition(raw, "Established") && crdCondition(raw, "NamesAccepted")) return;
    if (Date.now() > deadline) {
      throw new CrdBackupError(
        "CONFLICT",
        `CRD ${name} was not Established and NamesAccepted within ${options.timeoutMs / 1000}s`,
        { crd: name },
      );
    }
    await sleep(100, undefined, { signal: options.signal });
  }
}

export function describeCrd(raw: JsonObject): CrdInfo {
  const spec = obj(raw["spec"]);
  const names = obj(spec["names"]);
  const versions = (Array.isArray(spec["versions"]) ? spec["versions"] : []).filter(isJsonObject);
  const served = versions.filter((v) => v["served"] === true).map((v) => str(v["name"]));
  const storage = str(versions.find((v) => v["storage"] === true)?.["name"]);
  const established = crdCondition(raw, "Established");
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
