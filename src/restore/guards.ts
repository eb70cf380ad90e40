/**
 * What a restore refuses to write, and what it shows before writing. Anyone who can write the
 * bucket (the backup job's credential) can forge a snapshot, so its manifest is no authority on
 * what may be created: crd-backup restores custom resources only, each served by a CRD that is in
 * the archive or live in the target (not a built-in group, not an aggregated API server), and
 * names every conversion webhook an archived CRD would make the API server call. Any refusal
 * refuses the whole snapshot, before the first write.
 */
import type { ManifestResource } from "../archive/manifest.ts";
import { CrdBackupError, KubeApiError } from "../errors.ts";
import { isBuiltinGroup } from "../kube/builtin-groups.ts";
import type { KubeClient } from "../kube/client.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";
import { getJson } from "../objects/live.ts";

type Resource = Pick<ManifestResource, "group" | "plural">;

const text = (v: JsonValue | undefined): string | undefined => (typeof v === "string" ? v : undefined);

/** plural.group, as a CRD is named; the plural alone for the core group. */
export const resourceName = (r: Resource) => (r.group ? `${r.plural}.${r.group}` : r.plural);

/** One line for the first refused resource (and how many more): a forgery is refused whole. */
function refusal<R extends Resource>(
  snapshotId: string,
  refused: R[],
  why: (r: R) => string,
): CrdBackupError {
  const first = refused[0]!;
  const more = refused.length > 1 ? ` (and ${refused.length - 1} more)` : "";
  return new CrdBackupError(
    "ARCHIVE_INVALID",
    `snapshot ${snapshotId}: refusing ${resourceName(first)}${more}: ${why(first)}; crd-backup restores only custom resources, and nothing was written`,
    { snapshot: snapshotId, resource: resourceName(first) },
  );
}

/**
 * Refuses a manifest that lists a resource of one of kube-apiserver's own groups (RBAC,
 * Deployments, webhook configurations, ...). Checked on every resource, whatever the filters: a
 * snapshot never holds one, so a manifest that does is forged, and none of it is trusted.
 */
export function refuseBuiltinResources(snapshotId: string, resources: readonly Resource[]): void {
  const builtin = resources.filter((r) => isBuiltinGroup(r.group));
  if (builtin.length > 0)
    throw refusal(snapshotId, builtin, (r) =>
      r.group ? `${r.group} is a built-in API group` : "the core API group is built in",
    );
}

/**
 * Refuses resources whose CRD is neither in the archive nor live in the target: whatever serves
 * them there (an aggregated API server, a later built-in) is not something a snapshot captured.
 * `live` is asked only about resources without an archived CRD (never, for a real snapshot).
 */
export async function refuseResourcesWithoutCrd(
  snapshotId: string,
  resources: readonly Resource[],
  archived: ReadonlySet<string>,
  live: (name: string) => Promise<boolean>,
): Promise<void> {
  const orphans: Resource[] = [];
  for (const r of resources)
    if (!archived.has(resourceName(r)) && !(await live(resourceName(r)))) orphans.push(r);
  if (orphans.length > 0)
    throw refusal(snapshotId, orphans, () => "its CRD is neither in the snapshot nor in the cluster");
}

/**
 * The Service an APIService routes `group`/`version` to, if any: there the aggregator, not the
 * CRD an archive brings, would get the objects. A role that may not read APIServices (crd-backup's
 * restore role) cannot tell, and need not: it may write only its CRD groups.
 */
export async function aggregatedBy(
  client: KubeClient,
  group: string,
  version: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  let api: JsonObject | undefined;
  try {
    api = await getJson(client, `/apis/apiregistration.k8s.io/v1/apiservices/${version}.${group}`, signal);
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403) return undefined;
    throw e;
  }
  const spec = isJsonObject(api?.["spec"]) ? api["spec"] : {};
  const service = isJsonObject(spec["service"]) ? spec["service"] : undefined;
  return service ? `${text(service["namespace"]) ?? ""}/${text(service["name"]) ?? ""}` : undefined;
}

/** Refuses resources that an aggregated API server, not a CRD, would receive (see aggregatedBy). */
export function refuseAggregated(
  snapshotId: string,
  resources: readonly (Resource & Pick<ManifestResource, "version"> & { aggregatedBy?: string })[],
): void {
  const routed = resources.filter((r) => r.aggregatedBy !== undefined);
  if (routed.length > 0)
    throw refusal(
      snapshotId,
      routed,
      (r) =>
        `the cluster serves ${r.group}/${r.version} through an aggregated API server (service ${shown(r.aggregatedBy!)}), not a CRD`,
    );
}

/** Where the API server sends conversion reviews for a CRD: a Service in the cluster, or a URL. */
export interface ConversionWebhook {
  service?: { namespace: string; name: string; path?: string; port: number };
  url?: string;
}

/** The conversion webhook of a CRD body (spec.conversion.strategy Webhook), or undefined. */
export function conversionWebhook(crd: JsonObject): ConversionWebhook | undefined {
  const spec = isJsonObject(crd["spec"]) ? crd["spec"] : {};
  const conversion = isJsonObject(spec["conversion"]) ? spec["conversion"] : {};
  if (conversion["strategy"] !== "Webhook") return undefined;
  const webhook = isJsonObject(conversion["webhook"]) ? conversion["webhook"] : {};
  const config = isJsonObject(webhook["clientConfig"]) ? webhook["clientConfig"] : {};
  const found: ConversionWebhook = {};
  const url = text(config["url"]);
  if (url !== undefined) found.url = url;
  if (isJsonObject(config["service"])) {
    const s = config["service"];
    const path = text(s["path"]);
    found.service = {
      namespace: text(s["namespace"]) ?? "",
      name: text(s["name"]) ?? "",
      // the API server's default
      port: typeof s["port"] === "number" ? s["port"] : 443,
      ...(path !== undefined ? { path } : {}),
    };
  }
  return found;
}

/** Untrusted text on one line: control, line-breaking and bidi characters escaped, length capped. */
function shown(s: string): string {
  const cut = s.length > 200 ? `${s.slice(0, 200)}…` : s;
  return cut.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Where a conversion webhook points, for plans and logs: `service ns/name:port/path` or `URL ...`. */
export function webhookTarget(w: ConversionWebhook): string {
  const parts: string[] = [];
  if (w.service) {
    const { namespace, name, port, path } = w.service;
    parts.push(`service ${shown(namespace)}/${shown(name)}:${port}${path ? shown(path) : ""}`);
  }
  if (w.url !== undefined) parts.push(`URL ${shown(w.url)}`);
  return parts.join(" and ") || "no service or URL (the API server will refuse it)";
}
