import type { ArchiveWriter } from "../archive/writer.ts";
import { newSnapshotId } from "../archive/format.ts";
import { type Manifest, type ManifestResource, type NamespaceError } from "../archive/manifest.ts";
import { mapConcurrent } from "../concurrency.ts";
import type { Recipients } from "../crypto/keys.ts";
import { CrdBackupError, KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { clusterIdentity } from "../kube/cluster.ts";
import { collectionPath, discoverCrds, type CrdInfo } from "../kube/discovery.ts";
import { isJsonObject, parseJson, stringifyJson, type JsonObject } from "../json/json.ts";
import { listRawPages, newListOutcome, PageBuffers } from "../kube/list.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { TOOL_VERSION } from "../version.ts";
import { openPublication } from "./publish.ts";
import { cleanObject } from "../objects/clean.ts";
import { cleanObjectText } from "../objects/clean-text.ts";
import { namespaceSelected, resourceSelected, type Filters } from "../objects/filters.ts";

export interface SnapshotOptions {
  filters: Filters;
  /** Objects per list call. */
  pageSize: number;
  /** Resources listed at once. */
  concurrency: number;
  signal?: AbortSignal;
  log?: Logger;
  onProgress?: (progress: SnapshotProgress) => void;
  /** Recorded in the manifest as the options the snapshot was taken with. */
  recordedOptions?: JsonObject;
  /** Encrypt to these age recipients (docs/format.md, "Encryption"); plain when absent. */
  encryptTo?: Recipients;
}

export interface SnapshotProgress {
  resources: number;
  resourcesDone: number;
  objects: number;
  bytes: number;
}

export interface SnapshotResult {
  id: string;
  manifest: Manifest;
  location: string;
  /** The signing key's fingerprint (SHA256:…) when the manifest was signed. */
  signedBy?: string;
}

/** What capturing each resource of one snapshot run shares; built once per run. */
interface SnapshotRun {
  client: KubeClient;
  writer: ArchiveWriter;
  options: SnapshotOptions;
  /** The caller's signal, and the run's own abort (a failed upload stops the listing). */
  signal: AbortSignal;
  /** Page buffers, reused across the run's listings. */
  buffers: PageBuffers;
  progress: SnapshotProgress;
  /** The namespaces that hold captured objects (captureNamespaces reads them afterwards). */
  namespaces: Set<string>;
  log: Logger;
}

/**
 * Takes one snapshot: cluster → clean → archive → storage, streamed, so memory holds a page of
 * objects per resource in flight and never the cluster; published as publish.ts says (the
 * snapshot exists only once complete, and signed when the storage handle has a key). A resource that cannot be listed is
 * recorded with its reason and the snapshot is marked partial; the others are still captured.
 */
export async function takeSnapshot(
  client: KubeClient,
  storage: StorageBackend,
  options: SnapshotOptions,
): Promise<SnapshotResult> {
  const log = options.log ?? silentLogger;
  const startedAt = new Date();
  const cluster = await clusterIdentity(client, options.signal);
  const id = newSnapshotId(startedAt);
  const publication = await openPublication(storage, id, {
    encryptTo: options.encryptTo,
    signal: options.signal,
  });
  const { writer, signal } = publication;
  const progress: SnapshotProgress = { resources: 0, resourcesDone: 0, objects: 0, bytes: 0 };
  const run: SnapshotRun = {
    client,
    writer,
    options,
    signal,
    buffers: new PageBuffers(),
    progress,
    namespaces: new Set<string>(),
    log,
  };
  log.info("snapshot started", { id, storage: storage.location, cluster: cluster.server });

  try {
    const crds = await discoverCrds(client, { pageSize: options.pageSize, signal }, async (info, raw) => {
      if (!resourceSelected(options.filters, info.group, info.plural)) return;
      // list items of built-in kinds come without kind and apiVersion; a GET puts them first, in this order
      const crd = { kind: "CustomResourceDefinition", apiVersion: "apiextensions.k8s.io/v1", ...raw };
      const { object } = cleanObject(crd, { dropStatus: true });
      await writer.addCrd(info.name, Buffer.from(stringifyJson(object)));
    });
    const selected = crds.filter((c) => resourceSelected(options.filters, c.group, c.plural));
    progress.resources = selected.length;
    options.onProgress?.({ ...progress });

    const resources = await mapConcurrent(selected, options.concurrency, async (crd) => {
      const resource = await captureResource(run, crd);
      progress.resourcesDone++;
      options.onProgress?.({ ...progress });
      return resource;
    });

    const namespaceErrors = await captureNamespaces(run, [...run.namespaces].sort());
    const partial = resources.some((r) => r.errors.length > 0) || namespaceErrors.length > 0;
    const { manifest, totals, signedBy } = await publication.publish({
      toolVersion: TOOL_VERSION,
      snapshotId: id,
      status: partial ? "partial" : "complete",
      cluster,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options: options.recordedOptions ?? {},
      resources,
      namespaceErrors,
    });
    log.info("snapshot written", {
      id,
      status: manifest.status,
      objects: totals.counts.objects,
      bytes: totals.size,
      ...(signedBy ? { signedBy } : {}),
    });
    return { id, manifest, location: storage.location, ...(signedBy ? { signedBy } : {}) };
  } catch (e) {
    throw await publication.abort(e);
  }
}

async function captureResource(run: SnapshotRun, crd: CrdInfo): Promise<ManifestResource> {
  const { client, writer, options, signal, buffers, progress, namespaces, log } = run;
  const resource: ManifestResource = {
    group: crd.group,
    version: crd.listVersion ?? crd.storageVersion,
    plural: crd.plural,
    kind: crd.kind,
    namespaced: crd.namespaced,
    storageVersion: crd.storageVersion,
    servedVersions: crd.servedVersions,
    count: 0,
    bytes: 0,
    listResourceVersion: "",
    consistent: true,
    errors: [],
  };
  if (crd.problem || !crd.listVersion) {
    resource.errors.push({ reason: "NotListable", message: `CRD ${crd.name} is ${crd.problem}` });
    log.warn("resource skipped", { resource: crd.name, reason: crd.problem });
    return resource;
  }
  const outcome = newListOutcome();
  const path = collectionPath(crd.group, crd.listVersion, crd.plural);
  try {
    for await (const page of listRawPages(
      client,
      path,
      { pageSize: options.pageSize, labelSelector: options.filters.selector, signal, buffers },
      outcome,
    )) {
      for (let at = page.nextItem(); at >= 0;) {
        const cleaned = cleanObjectText(page.bytes, at);
        at = page.nextItem(cleaned.end);
        const namespace = crd.namespaced ? cleaned.namespace : undefined;
        if (!namespaceSelected(options.filters, namespace)) continue;
        const ref = {
          group: crd.group,
          version: crd.listVersion,
          plural: crd.plural,
          namespace,
          name: cleaned.name,
        };
        // The page's bytes go into the archive as they are (the writer copies the body's spans in
        // place), with the fields the index needs, read while cleaning (name, namespace,
        // apiVersion, kind, owners): the writer need not parse the body again.
        const size = await writer.addObject(ref, cleaned.body, { uid: cleaned.uid, fields: cleaned });
        resource.count++;
        resource.bytes += size;
        progress.objects++;
        progress.bytes += size;
        if (namespace) namespaces.add(namespace);
      }
      options.onProgress?.({ ...progress });
    }
  } catch (e) {
    if (!(e instanceof KubeApiError)) throw e; // storage, archive or connectivity failures end the snapshot
    resource.errors.push({ reason: e.reason ?? `HTTP${e.status}`, message: e.message });
    log.warn("resource incomplete", { resource: crd.name, status: e.status, reason: e.reason });
  }
  resource.listResourceVersion = outcome.resourceVersion;
  resource.consistent = outcome.consistent;
  if (!outcome.consistent) {
    log.warn("listing was not consistent: a continue token expired", { resource: crd.name });
  }
  return resource;
}

/**
 * The namespaces that hold captured objects, so a restore can recreate them with their labels.
 * They are read `concurrency` at a time (a cluster may have thousands, each a round trip after the
 * listing is done) and written in name order.
 */
async function captureNamespaces(run: SnapshotRun, names: string[]): Promise<NamespaceError[]> {
  const { client, writer, options, signal, log } = run;
  const errors: NamespaceError[] = [];
  const read = await mapConcurrent(names, options.concurrency, async (name) => {
    try {
      const ns = parseJson((await client.request({ path: `/api/v1/namespaces/${name}`, signal })).text);
      if (!isJsonObject(ns)) throw new CrdBackupError("KUBE_API", `namespace ${name}: not an object`);
      const { object } = cleanObject({ kind: "Namespace", apiVersion: "v1", ...ns }, { dropStatus: true });
      return Buffer.from(stringifyJson(object));
    } catch (e) {
      if (!(e instanceof KubeApiError)) throw e;
      if (e.status === 404) {
        log.warn("namespace deleted during the snapshot", { namespace: name });
        return undefined;
      }
      errors.push({ namespace: name, reason: e.reason ?? `HTTP${e.status}`, message: e.message });
      log.warn("namespace not captured", { namespace: name, status: e.status, reason: e.reason });
      return undefined;
    }
  });
  for (const [i, body] of read.entries()) if (body) await writer.addNamespace(names[i]!, body);
  return errors.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}
