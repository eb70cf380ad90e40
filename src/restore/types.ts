/**
 * The shapes planning and writing share (options.ts, item.ts, plan.ts, apply*.ts import them from
 * here, so none of those has to import another for a type).
 */
import type { FieldChange } from "../json/diff.ts";
import type { JsonObject } from "../json/json.ts";
import type { LiveObject } from "../objects/live.ts";
import type { ConversionWebhook } from "./guards.ts";
import type { TargetVersions, VersionVerdict } from "./versions.ts";

/** What --existing does with an object that is already in the cluster. */
export type ExistingPolicy = "skip" | "update" | "fail";

export interface ResourcePlan {
  key: string;
  group: string;
  /** The version objects are read and written through: the archived one, or a --version-map's TO. */
  version: string;
  /** The version the snapshot's objects were read at. */
  archivedVersion: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  policy: ExistingPolicy;
  /** The CRD is served live already (before this restore). */
  crdLive: boolean;
  statusSubresource: boolean;
  /** Why no object of this resource can be restored (a conflicting live CRD). */
  conflict?: string;
  /** With no live CRD: the Service of an APIService that would get this resource's objects instead. */
  aggregatedBy?: string;
  live: Map<string, LiveObject>;
  /** The target's CRD (live, or the archived one the restore creates) and the verdict on the skew. */
  versions?: ResourceVersions;
}

export interface ResourceVersions {
  target: TargetVersions;
  verdict: VersionVerdict;
}

export type CrdAction = "create" | "unchanged" | "differs";

export interface CrdPlan {
  name: string;
  action: CrdAction;
  diff?: FieldChange[];
  /** The conversion webhook a CRD this restore creates brings: the API server will call it. */
  webhook?: ConversionWebhook;
}

export interface NamespacePlan {
  name: string;
  source: string;
  exists: boolean;
  captured?: JsonObject;
}
