/**
 * The standby's resume point, kept in the target cluster (a ConfigMap in --state-namespace) so a
 * restarted standby, or its replacement on another machine, continues where the last one left
 * off. Written by server-side apply after each step is fully applied, never before.
 */
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { isJsonObject, parseJson } from "../json/json.ts";
import type { ResumePoint } from "./step.ts";

export const STANDBY_NAME = "crd-backup-standby";
export const FIELD_MANAGER = "crd-backup-standby";

const configMapPath = (namespace: string, name = "") =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps${name ? `/${name}` : ""}`;

/** Creates the state namespace unless it exists (a standby on an empty target makes it). */
export async function ensureNamespace(
  client: KubeClient,
  namespace: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await client.request({ path: `/api/v1/namespaces/${encodeURIComponent(namespace)}`, signal });
    return;
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 404)) throw e;
  }
  try {
    await client.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }),
      signal,
    });
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 409)) throw e; // made meanwhile
  }
}

/** The stored resume point; undefined when there is none or it is incomplete (then the standby re-syncs). */
export async function readResume(
  client: KubeClient,
  namespace: string,
  signal?: AbortSignal,
): Promise<ResumePoint | undefined> {
  let text: string;
  try {
    text = (await client.request({ path: configMapPath(namespace, STANDBY_NAME), signal })).text;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return undefined;
    throw e;
  }
  const body = parseJson(text);
  const data = isJsonObject(body) && isJsonObject(body["data"]) ? body["data"] : {};
  const field = (k: string) => (typeof data[k] === "string" ? data[k] : undefined);
  const [cluster, base, segment, at] = [field("cluster"), field("base"), field("segment"), field("at")];
  return cluster && base && segment && at ? { cluster, base, segment, at } : undefined;
}

export async function writeResume(
  client: KubeClient,
  namespace: string,
  point: ResumePoint,
  signal?: AbortSignal,
): Promise<void> {
  await client.request({
    method: "PATCH",
    path: configMapPath(namespace, STANDBY_NAME),
    query: { fieldManager: FIELD_MANAGER, force: "true" },
    contentType: "application/apply-patch+yaml",
    body: JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: STANDBY_NAME, namespace },
      data: { ...point, appliedAt: new Date().toISOString() },
    }),
    signal,
  });
}
