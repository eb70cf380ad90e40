import { KubeApiError } from "../errors.ts";
import type { ManifestResource } from "../archive/manifest.ts";
import type { KubeClient } from "../kube/client.ts";
import { collectionPath, CRD_PATH } from "../kube/discovery.ts";
import { isJsonObject, parseJson } from "../json/json.ts";
import { listPages } from "../kube/list.ts";
import { Limiter } from "../concurrency.ts";

/** The DELETE answer is the object itself while finalizers keep it, a Status once it is gone. */
function heldByFinalizers(text: string): boolean {
  const value = parseJson(text);
  if (!isJsonObject(value) || value["kind"] === "Status" || !isJsonObject(value["metadata"])) return false;
  const finalizers = value["metadata"]["finalizers"];
  return Array.isArray(finalizers) && finalizers.length > 0;
}

export interface CleanupReport {
  objects: number;
  namespaces: number;
  crds: number;
  /** Deleted objects that finalizers still hold (their controllers decide when they go). */
  heldByFinalizers: number;
  /** Deletions the server refused, with its reason. */
  failures: string[];
}

/**
 * Deletes what a drill created, found by its label and nothing else: objects first, then the
 * namespaces and CRDs it created. Deletion is requested, not awaited: finalizers and namespace
 * termination finish on the cluster's own time.
 */
export async function cleanupDrill(
  client: KubeClient,
  resources: ManifestResource[],
  label: { key: string; value: string },
  options: { concurrency: number; removeFinalizers: boolean; signal?: AbortSignal },
): Promise<CleanupReport> {
  const report: CleanupReport = { objects: 0, namespaces: 0, crds: 0, heldByFinalizers: 0, failures: [] };
  const labelSelector = `${label.key}=${label.value}`;
  const pool = new Limiter(options.concurrency);
  const remove = (path: string, what: string, count: () => void, finalizers = false) =>
    pool.submit(async () => {
      try {
        const gone = await client.request({ method: "DELETE", path, signal: options.signal });
        count();
        if (!finalizers || !heldByFinalizers(gone.text)) return;
        if (!options.removeFinalizers) {
          report.heldByFinalizers++;
          return;
        }
        // the finalizers came from the snapshot; whatever they guard was never created for a drill copy
        await client.request({
          method: "PATCH",
          path,
          contentType: "application/merge-patch+json",
          body: '{"metadata":{"finalizers":null}}',
          signal: options.signal,
        });
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) return;
        if (!(e instanceof KubeApiError)) throw e;
        report.failures.push(`${what}: ${e.message}`);
      }
    });
  const each = async function* (path: string) {
    for await (const page of listPages(client, path, {
      pageSize: 500,
      labelSelector,
      signal: options.signal,
    })) {
      for (const item of page) {
        const md = isJsonObject(item["metadata"]) ? item["metadata"] : {};
        yield { namespace: md["namespace"] as string | undefined, name: String(md["name"]) };
      }
    }
  };

  for (const r of resources) {
    const live = await client
      .request({ path: `${CRD_PATH}/${r.plural}.${r.group}`, signal: options.signal })
      .catch((e: unknown) => {
        if (e instanceof KubeApiError && e.status === 404) return undefined;
        throw e;
      });
    if (!live) continue;
    for await (const o of each(collectionPath(r.group, r.version, r.plural))) {
      await remove(
        `${collectionPath(r.group, r.version, r.plural, o.namespace)}/${o.name}`,
        `${r.plural}.${r.group} ${o.namespace ? `${o.namespace}/` : ""}${o.name}`,
        () => report.objects++,
        true,
      );
    }
  }
  await pool.drain();
  for await (const ns of each("/api/v1/namespaces"))
    await remove(`/api/v1/namespaces/${ns.name}`, `namespace ${ns.name}`, () => report.namespaces++);
  await pool.drain();
  for await (const crd of each(CRD_PATH))
    await remove(`${CRD_PATH}/${crd.name}`, `CRD ${crd.name}`, () => report.crds++);
  await pool.drain();
  return report;
}
