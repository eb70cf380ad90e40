/**
 * What the recorder follows (a custom resource, the CRDs, the Namespaces) and how one object of
 * it, from a watch event or a list page, becomes a journal record: cleaned exactly as a snapshot
 * cleans it (src/snapshot/take.ts), so a body in the journal is byte for byte what a snapshot of
 * the same object stores.
 */
import { CrdBackupError } from "../../errors.ts";
import { collectionPath, CRD_PATH, type CrdInfo } from "../../kube/discovery.ts";
import { valueEnd } from "../../json/scan.ts";
import { isJsonObject, parseJson, stringifyJson, type JsonObject } from "../../json/json.ts";
import { metadataString } from "../../kube/watch.ts";
import { cleanObject } from "../../objects/clean.ts";
import { cleanObjectText } from "../../objects/clean-text.ts";
import type { RecordKey, RecordKind } from "../segment-format.ts";

export interface FollowedResource {
  /** Its key in a segment trailer's `rvs`: "crds", "namespaces" or `plural.group/version`. */
  name: string;
  /** Its name in a gap record: "crds", "namespaces" or `plural.group`. */
  gapName: string;
  kind: RecordKind;
  group?: string;
  version?: string;
  plural?: string;
  namespaced: boolean;
  /** The collection, cluster-wide. */
  path: string;
}

export const CRDS: FollowedResource = {
  name: "crds",
  gapName: "crds",
  kind: "crd",
  namespaced: false,
  path: CRD_PATH,
};

export const NAMESPACES: FollowedResource = {
  name: "namespaces",
  gapName: "namespaces",
  kind: "namespace",
  namespaced: false,
  path: "/api/v1/namespaces",
};

export function rvsName(group: string, version: string, plural: string): string {
  return `${plural}.${group}/${version}`;
}

/** The custom resource of a CRD, at the version a snapshot lists it at. */
export function objectResource(crd: CrdInfo): FollowedResource {
  const version = crd.listVersion ?? crd.storageVersion;
  return {
    name: rvsName(crd.group, version, crd.plural),
    gapName: `${crd.plural}.${crd.group}`,
    kind: "object",
    group: crd.group,
    version,
    plural: crd.plural,
    namespaced: crd.namespaced,
    path: collectionPath(crd.group, version, crd.plural),
  };
}

export interface DecodedItem {
  /** The index after the object in its bytes. */
  end: number;
  key: RecordKey;
  uid: string;
  rv: string;
  body: Buffer;
  /** A CRD's parsed object (the recorder follows the CRDs it describes). */
  raw?: JsonObject;
}

/** The object at bytes[start] (a list item or a watch event's object), cleaned. */
export function decodeItem(resource: FollowedResource, bytes: Buffer, start: number): DecodedItem {
  if (resource.kind === "object") {
    const cleaned = cleanObjectText(bytes, start);
    return {
      end: cleaned.end,
      key: {
        kind: "object",
        group: resource.group,
        version: resource.version,
        plural: resource.plural,
        namespace: resource.namespaced ? cleaned.namespace : undefined,
        name: cleaned.name,
      },
      uid: cleaned.uid ?? "",
      rv: metadataString(bytes, start, "resourceVersion") ?? "",
      body: cleaned.body.toBuffer(),
    };
  }
  // CRDs and Namespaces as take.ts stores them: parsed losslessly, kind and apiVersion first, no status
  const end = valueEnd(bytes, start);
  const raw = parseJson(bytes.toString("utf8", start, end));
  if (!isJsonObject(raw)) throw new CrdBackupError("KUBE_API", `${resource.path}: an item is not an object`);
  const typed =
    resource.kind === "crd"
      ? { kind: "CustomResourceDefinition", apiVersion: "apiextensions.k8s.io/v1", ...raw }
      : { kind: "Namespace", apiVersion: "v1", ...raw };
  const { object, uid } = cleanObject(typed, { dropStatus: true });
  const meta = isJsonObject(raw["metadata"]) ? raw["metadata"] : {};
  return {
    end,
    key: { kind: resource.kind, name: typeof meta["name"] === "string" ? meta["name"] : "" },
    uid: uid ?? "",
    rv: typeof meta["resourceVersion"] === "string" ? meta["resourceVersion"] : "",
    body: Buffer.from(stringifyJson(object)),
    raw,
  };
}
