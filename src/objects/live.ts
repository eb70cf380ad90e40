import { hash } from "node:crypto";
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { collectionPath, CRD_PATH, describeCrd, type CrdInfo } from "../kube/discovery.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import { listRawPages } from "../kube/list.ts";
import { cleanObjectText, type CleanedObject } from "./clean-text.ts";
import { canonicalJson } from "../json/canonical.ts";
import { comparableForm } from "./normalize.ts";

/**
 * A live object as much as planning needs: its uid, and either that its cleaned text is the
 * source's byte for byte (so it is unchanged, and was never parsed) or the digest of its
 * comparable form.
 */
export interface LiveObject {
  uid: string;
  /** The digest of its comparable form: absent when `sameText`, or when the read kept `text`. */
  digest?: string;
  sameText?: true;
  /** Its textDigest, when the read kept it for the plan to compare with the source's (`keepText`). */
  text?: string;
  /** Its owners' uids, when the read was asked for them (a sync deletes dependents before owners). */
  owners?: string[];
  /** Its labels do not match the read's selector: outside what a sync may delete. */
  unselected?: true;
}

/** What a sync's read of live objects also notes: owners, and which labels are in its scope. */
export interface PruneDetails {
  /** Undefined: every label is in scope. */
  selects?: (labels: Record<string, string>) => boolean;
}

/**
 * The SHA-256 of an object's text as a snapshot stores it (objects/clean-text.ts: server-owned
 * metadata cut out, every other byte as served), less status when status is not compared. The API
 * server writes equal objects as equal bytes, so equal text digests mean an unchanged object
 * without parsing either side; unequal ones are compared in the comparable form.
 */
export function textDigest(body: Buffer, withStatus: boolean): string {
  return digestCleaned(cleanObjectText(body, 0, { dropStatus: !withStatus }));
}

/**
 * textDigest of an archive entry, whose SHA-256 (hex) the reader computed: cleaning only drops
 * bytes (members, whitespace) and never adds any, so a cleaned text as long as the body is the
 * body, and its digest the entry's (a second hash of every body saved).
 */
export function entryTextDigest(entry: { body: Buffer; sha256: string }, withStatus: boolean): string {
  const cleaned = cleanObjectText(entry.body, 0, { dropStatus: !withStatus });
  if (cleaned.body.length === entry.body.length) return Buffer.from(entry.sha256, "hex").toString("base64");
  return digestCleaned(cleaned);
}

// crypto.hash: one call and no Hash object, for the two digests every object gets
function digestCleaned(cleaned: CleanedObject): string {
  return hash("sha256", cleaned.body.toBuffer(), "base64");
}

export function digestOf(obj: JsonObject, withStatus: boolean): string {
  return hash("sha256", canonicalJson(comparableForm(obj, { withStatus })), "hex");
}

/** The key of a live object in liveObjects' map, and of the source's objects matched against it. */
export const liveKey = (namespace: string | undefined, name: string): string => `${namespace ?? ""}/${name}`;

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
 * Whether the target serves any object of a resource at this version: one LIST of one item. Any
 * refusal (no CRD, a version not served, an aggregated API server that is down, no permission)
 * answers false: this only decides what planning prepares, and planning's own reads and guards
 * say what is wrong, in their words.
 */
export async function hasLiveObjects(
  client: KubeClient,
  group: string,
  version: string,
  plural: string,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    const page = await getJson(client, `${collectionPath(group, version, plural)}?limit=1`, signal);
    const items = page?.["items"];
    return Array.isArray(items) && items.length > 0;
  } catch (e) {
    if (e instanceof KubeApiError) return false;
    throw e;
  }
}

/** What a read of live objects is for: see liveObjects. */
export interface LiveReadOptions {
  withStatus: boolean;
  signal?: AbortSignal;
  /** A sync's read: owners' uids too (only objects that have owners cost more), and labels in scope. */
  prune?: PruneDetails;
  /** The textDigest of the source's object under a key, when the source's text can be compared. */
  storedText?: (key: string) => string | undefined;
  /**
   * Keep every object's textDigest (LiveObject.text) and parse none: the caller compares them with
   * the source's as it reads the source (restore/plan-pass.ts), so the read need not wait for them.
   */
  keepText?: boolean;
}

/**
 * Every live object of a resource, keyed `namespace/name` (or `/name`), paged; digests only, not
 * bodies. An object whose text matches `storedText` is not parsed: at a sync of 50k objects of
 * which 1% differ, parsing the other 99% was most of the plan's time.
 */
export async function liveObjects(
  client: KubeClient,
  group: string,
  version: string,
  plural: string,
  options: LiveReadOptions,
): Promise<Map<string, LiveObject>> {
  const { withStatus, prune, storedText, keepText } = options;
  const out = new Map<string, LiveObject>();
  for await (const page of listRawPages(client, collectionPath(group, version, plural), {
    pageSize: 500,
    signal: options.signal,
  })) {
    for (let at = page.nextItem(); at >= 0;) {
      const meta = cleanObjectText(page.bytes, at, { dropStatus: !withStatus });
      const key = liveKey(meta.namespace, meta.name);
      const live: LiveObject = { uid: meta.uid ?? "" };
      const text = storedText?.(key);
      let item: JsonObject | undefined;
      if (keepText) live.text = digestCleaned(meta);
      else if (text !== undefined && digestCleaned(meta) === text) live.sameText = true;
      else {
        item = parseJson(page.bytes.toString("utf8", at, meta.end)) as JsonObject;
        live.digest = digestOf(item, withStatus);
      }
      if (prune) {
        const owners = (meta.ownerReferences ?? []).flatMap((r) => (r?.uid ? [r.uid] : []));
        if (owners.length > 0) live.owners = owners;
        if (prune.selects) {
          item ??= parseJson(page.bytes.toString("utf8", at, meta.end)) as JsonObject;
          const md = isJsonObject(item["metadata"]) ? item["metadata"] : {};
          const labels = isJsonObject(md["labels"]) ? (md["labels"] as Record<string, string>) : {};
          if (!prune.selects(labels)) live.unselected = true;
        }
      }
      out.set(key, live);
      at = page.nextItem(meta.end);
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
