import { createHash } from "node:crypto";
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { collectionPath, CRD_PATH, describeCrd, type CrdInfo } from "../kube/discovery.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import { listPages } from "../kube/list.ts";
import { canonicalJson } from "../json/canonical.ts";
import { comparableForm } from "./normalize.ts";

/** A live object as much as planning needs: its uid and a digest of its comparable form. */
export interface LiveObject {
  uid: string;
  digest: string;
  /** Its owners' uids, when the read was asked for them (a sync deletes dependents before owners). */
  owners?: string[];
  /** Its labels do not match the read's selector: outside what a sync may delete. */
  unselected?: true;
}

/** What a sync's read of live objects also notes: owners, and which labels are in its scope. */
export interface PruneDetails {
  selects: (labels: Record<string, string>) => boolean;
}

export function digestOf(obj: JsonObject, withStatus: boolean): string {
  return createHash("sha256")
    .update(canonicalJson(comparableForm(obj, { withStatus })))
    .digest("hex");
}

export function objectPath(
  group: string,
  version: string,
  plural: string,
  namespace: string | undefined,
  name: string,
): string {
  return `${collectionPath(group, version, plural, namespace)}/${name}`;
}

export async function getJson(
  client: KubeClient,
  path: string,
  signal?: AbortSignal,
): Promise<JsonObject | undefined> {
  try {
    const value = parseJson((await client.request({ path, signal })).text);
    return isJsonObject(value) ? value : undefined;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return undefined;
    throw e;
  }
}

export async function liveCrd(
  client: KubeClient,
  name: string,
  signal?: AbortSignal,
): Promise<{ raw: JsonObject; info: CrdInfo } | undefined> {
  const raw = await getJson(client, `${CRD_PATH}/${name}`, signal);
  return raw ? { raw, info: describeCrd(raw) } : undefined;
}

/**
 * Every live object of a resource, keyed `namespace/name` (or `/name`), paged; digests only, not
 * bodies. With `prune`, owners' uids too (only objects that have owners cost more) and whether its
 * labels are selected.
 */
export async function liveObjects(
  client: KubeClient,
  group: string,
  version: string,
  plural: string,
  withStatus: boolean,
  signal?: AbortSignal,
  prune?: PruneDetails,
): Promise<Map<string, LiveObject>> {
  const out = new Map<string, LiveObject>();
  for await (const page of listPages(client, collectionPath(group, version, plural), {
    pageSize: 500,
    signal,
  })) {
    for (const item of page) {
      const md = isJsonObject(item["metadata"]) ? item["metadata"] : {};
      const live: LiveObject = { uid: String(md["uid"]), digest: digestOf(item, withStatus) };
      if (prune) {
        const refs = Array.isArray(md["ownerReferences"]) ? md["ownerReferences"] : [];
        const owners = refs.flatMap((r) =>
          isJsonObject(r) && typeof r["uid"] === "string" ? [r["uid"]] : [],
        );
        if (owners.length > 0) live.owners = owners;
        const labels = isJsonObject(md["labels"]) ? (md["labels"] as Record<string, string>) : {};
        if (!prune.selects(labels)) live.unselected = true;
      }
      out.set(`${md["namespace"] ?? ""}/${md["name"]}`, live);
    }
  }
  return out;
}

/**
 * Finds owners that are not part of the restore: any kind, through API discovery, cached per
 * group-version and per owner. Answers the owner's current uid, or undefined if it is not there.
 */
export class OwnerLookup {
  private readonly resources = new Map<string, Promise<Map<string, { name: string; namespaced: boolean }>>>();
  private readonly owners = new Map<string, Promise<string | undefined>>();
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  uidOf(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<string | undefined> {
    const key = `${apiVersion}|${kind}|${namespace ?? ""}|${name}`;
    let found = this.owners.get(key);
    if (!found) {
      found = this.lookup(apiVersion, kind, namespace, name);
      this.owners.set(key, found);
    }
    return found;
  }

  private async lookup(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<string | undefined> {
    const resource = (await this.discover(apiVersion)).get(kind);
    if (!resource) return undefined;
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const path =
      resource.namespaced && namespace
        ? `${base}/namespaces/${namespace}/${resource.name}/${name}`
        : `${base}/${resource.name}/${name}`;
    const obj = await getJson(this.client, path);
    const md = obj && isJsonObject(obj["metadata"]) ? obj["metadata"] : undefined;
    return typeof md?.["uid"] === "string" ? md["uid"] : undefined;
  }

  private discover(apiVersion: string) {
    let found = this.resources.get(apiVersion);
    if (!found) {
      found = (async () => {
        const list = await getJson(
          this.client,
          apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`,
        );
        const map = new Map<string, { name: string; namespaced: boolean }>();
        for (const r of Array.isArray(list?.["resources"]) ? list["resources"] : []) {
          if (isJsonObject(r) && typeof r["name"] === "string" && !r["name"].includes("/")) {
            map.set(String(r["kind"]), { name: r["name"], namespaced: r["namespaced"] === true });
          }
        }
        return map;
      })();
      this.resources.set(apiVersion, found);
    }
    return found;
  }
}
