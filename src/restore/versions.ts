/**
 * CRD version skew: the version a resource's objects were archived at, against the CRD they will
 * be written to (the live one, or the archived one the restore creates). Pure: a verdict per
 * resource from what the plan read, before anything is written.
 */
import { CrdBackupError } from "../errors.ts";
import { describeCrd } from "../kube/discovery.ts";
import { isJsonObject, type JsonObject } from "../json/json.ts";
import { conversionWebhook, webhookTarget, type ConversionWebhook } from "./guards.ts";

/** `--version-map RESOURCE=FROM:TO`: objects archived at `from` are written through `to`. */
export interface VersionMapping {
  from: string;
  to: string;
}

/** What a restore needs to know of the target's CRD for a resource. */
export interface TargetVersions {
  /** The CRD is live in the target, or is created from the snapshot. */
  source: "live" | "snapshot";
  servedVersions: string[];
  storageVersion: string;
  /** spec.conversion.strategy; the API server's default is None. */
  strategy: "None" | "Webhook";
  webhook?: ConversionWebhook;
}

export type VersionVerdict =
  | { kind: "same" }
  /** The target serves the archived version and stores another: the API server converts. */
  | { kind: "converted" }
  | { kind: "not-served" }
  | { kind: "mapped"; from: string; to: string };

export function targetVersions(crd: JsonObject, source: TargetVersions["source"]): TargetVersions {
  const info = describeCrd(crd);
  const spec = isJsonObject(crd["spec"]) ? crd["spec"] : {};
  const conversion = isJsonObject(spec["conversion"]) ? spec["conversion"] : {};
  const webhook = conversionWebhook(crd);
  return {
    source,
    servedVersions: info.servedVersions,
    storageVersion: info.storageVersion,
    strategy: conversion["strategy"] === "Webhook" ? "Webhook" : "None",
    ...(webhook ? { webhook } : {}),
  };
}

/**
 * The verdict for objects archived at `archived`, written to a CRD like `target`, with the
 * resource's --version-map entry if any (a map applies only to objects archived at its FROM;
 * versionMapProblem says whether it may be used at all).
 */
export function versionVerdict(
  archived: string,
  target: Pick<TargetVersions, "servedVersions" | "storageVersion">,
  map?: VersionMapping,
): VersionVerdict {
  if (map && map.from === archived && target.servedVersions.includes(map.to))
    return { kind: "mapped", from: map.from, to: map.to };
  if (!target.servedVersions.includes(archived)) return { kind: "not-served" };
  return target.storageVersion === archived ? { kind: "same" } : { kind: "converted" };
}

/** Why a --version-map entry cannot be used for a resource archived at `archived`, or undefined. */
export function versionMapProblem(
  archived: string,
  target: Pick<TargetVersions, "source" | "servedVersions">,
  map: VersionMapping,
): string | undefined {
  if (map.from !== archived) return `the snapshot's objects are at ${archived}, not ${map.from}`;
  // a CRD the restore creates is the archived one: it serves the version its objects were read at
  if (target.source === "snapshot")
    return "its CRD is not in the cluster; the restore creates it from the snapshot, which serves the archived version";
  if (!target.servedVersions.includes(map.to))
    return `the cluster's CRD does not serve ${map.to} (it serves ${target.servedVersions.join(", ") || "nothing"})`;
  return undefined;
}

/**
 * Parses the --version-map values: `plural.group=FROM:TO`, one map per resource. Only the syntax is
 * checked here; whether the resource and versions fit the snapshot and the target is the plan's.
 */
export function parseVersionMap(values: readonly string[]): Map<string, VersionMapping> {
  const maps = new Map<string, VersionMapping>();
  for (const v of values) {
    const m = /^([^=\s]+)=([^:=\s]+):([^:=\s]+)$/.exec(v);
    if (!m)
      return usage(
        `--version-map takes RESOURCE=FROM:TO (e.g. widgets.example.com=v1alpha1:v1beta1), not "${v}"`,
      );
    const [, resource, from, to] = m as unknown as [string, string, string, string];
    if (!resource.includes(".") || resource.startsWith(".") || resource.endsWith("."))
      return usage(`--version-map ${v}: name the resource as plural.group (e.g. widgets.example.com)`);
    if (from === to) return usage(`--version-map ${v}: FROM and TO are the same version`);
    if (maps.has(resource)) return usage(`--version-map ${v}: ${resource} is mapped twice`);
    maps.set(resource, { from, to });
  }
  return maps;
}

function usage(message: string): never {
  throw new CrdBackupError("USAGE", message);
}

/** The apiVersion objects of a mapped resource are written with; undefined when not mapped. */
export function mappedApiVersion(r: {
  group: string;
  version: string;
  archivedVersion: string;
}): string | undefined {
  return r.version === r.archivedVersion ? undefined : `${r.group}/${r.version}`;
}

/** One resource's verdict as the plan output, -o json and --report give it. */
export interface ResourceVersionReport {
  resource: string;
  /** The version the snapshot's objects were read at. */
  archivedVersion: string;
  /** Where the target CRD comes from: live in the cluster, or created from the snapshot. */
  crd: TargetVersions["source"];
  servedVersions: string[];
  storageVersion: string;
  conversion: TargetVersions["strategy"];
  /** For conversion Webhook: where the API server sends conversion reviews. */
  webhook?: string;
  verdict: VersionVerdict["kind"];
  /** For `mapped`: the version objects are written through. */
  writtenVersion?: string;
}

export function versionReport(
  resource: string,
  archivedVersion: string,
  target: TargetVersions,
  verdict: VersionVerdict,
): ResourceVersionReport {
  return {
    resource,
    archivedVersion,
    crd: target.source,
    servedVersions: target.servedVersions,
    storageVersion: target.storageVersion,
    conversion: target.strategy,
    ...(target.strategy === "Webhook"
      ? { webhook: target.webhook ? webhookTarget(target.webhook) : "" }
      : {}),
    verdict: verdict.kind,
    ...(verdict.kind === "mapped" ? { writtenVersion: verdict.to } : {}),
  };
}

/**
 * One line for a terminal: `widgets.example.com v1alpha1: converted by the server (...); CRD
 * (live) serves v1alpha1, v1beta1, stores v1beta1, conversion None`.
 */
export function versionLine(r: ResourceVersionReport): string {
  const conversion = r.conversion === "Webhook" ? `Webhook (${r.webhook || "no service or URL"})` : "None";
  const verdict =
    r.verdict === "same"
      ? "same"
      : r.verdict === "converted"
        ? "converted by the server"
        : r.verdict === "mapped"
          ? `mapped ${r.archivedVersion}->${r.writtenVersion}`
          : "not served (a conflict: none of its objects is written)";
  const crd = r.crd === "live" ? "the cluster's CRD" : "the snapshot's CRD (created)";
  return `${r.resource} ${r.archivedVersion}: ${verdict}; ${crd} serves ${r.servedVersions.join(", ") || "nothing"}, stores ${r.storageVersion || "nothing"}, conversion ${conversion}`;
}

/** The verdicts of the resources that have one, in the plan's order. */
export function resourceVersions(
  resources: Iterable<{
    key: string;
    archivedVersion: string;
    versions?: { target: TargetVersions; verdict: VersionVerdict };
  }>,
): ResourceVersionReport[] {
  const out: ResourceVersionReport[] = [];
  for (const r of resources)
    if (r.versions) out.push(versionReport(r.key, r.archivedVersion, r.versions.target, r.versions.verdict));
  return out;
}
