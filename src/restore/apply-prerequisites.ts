/**
 * The first two steps of the restore order (restore/order.ts): the CRDs, each waited for until
 * Established, and the namespaces that restored objects need.
 */
import { CrdBackupError, KubeApiError } from "../errors.ts";
import { CRD_PATH, describeCrd, waitForCrdReady } from "../kube/discovery.ts";
import { isJsonObject, parseJson, stringifyJson, type JsonObject, type JsonValue } from "../json/json.ts";
import { isPerObject, query, serverMessage, type Context } from "./apply-context.ts";
import { getJson } from "../objects/live.ts";
import type { RestoreOptions } from "./options.ts";

export async function restoreCrds(ctx: Context): Promise<void> {
  const { client, plan, options, report } = ctx;
  const bodies = new Map<string, Buffer>();
  // CRDs come first in an archive (archive/order.ts): read no further than them, and only to create one
  if (plan.crds.some((crd) => crd.action === "create"))
    for await (const entry of plan.snapshot.entries()) {
      if (entry.kind === "crd") bodies.set(entry.record.name, entry.body);
      else if (entry.kind === "object" || entry.kind === "namespace") break;
    }
  for (const crd of plan.crds) {
    if (crd.action === "unchanged") {
      report.add({
        kind: "crd",
        resource: "customresourcedefinitions",
        name: crd.name,
        outcome: "unchanged",
      });
      continue;
    }
    if (crd.action === "differs") {
      // a live CRD is compared, never replaced: changing a schema under running operators is their owners' call
      report.add({
        kind: "crd",
        resource: "customresourcedefinitions",
        name: crd.name,
        outcome: "skipped",
        reason: "exists and differs from the snapshot; left as it is",
        diff: crd.diff,
      });
      continue;
    }
    try {
      await client.request({
        method: "POST",
        path: CRD_PATH,
        query: query(options),
        body: withCreatedLabel(bodies.get(crd.name)!.toString("utf8"), options),
      });
      if (!options.dryRun)
        await waitForCrdReady(client, crd.name, { timeoutMs: options.waitTimeoutMs, signal: options.signal });
      report.add({
        kind: "crd",
        resource: "customresourcedefinitions",
        name: crd.name,
        outcome: options.dryRun ? "would-create" : "created",
      });
    } catch (e) {
      if (!isPerObject(e) && !(e instanceof CrdBackupError && e.code === "CONFLICT")) throw e;
      report.add({
        kind: "crd",
        resource: "customresourcedefinitions",
        name: crd.name,
        outcome: "failed",
        reason: serverMessage(e),
      });
      for (const r of plan.resources.values())
        if (r.key === crd.name) r.conflict = `its CRD could not be restored: ${serverMessage(e)}`;
    }
  }
  for (const r of plan.resources.values()) {
    if (!r.crdLive && !options.dryRun && !r.conflict) {
      const live = await getJson(client, `${CRD_PATH}/${r.key}`);
      if (live) r.statusSubresource = describeCrd(live).statusVersions.includes(r.version);
    }
  }
}

/** A CRD's archived text, with the created label added when the restore marks what it creates. */
function withCreatedLabel(text: string, options: RestoreOptions): string {
  if (!options.createdLabel) return text;
  const crd = parseJson(text) as JsonObject;
  const metadata = crd["metadata"] as JsonObject;
  metadata["labels"] = {
    ...(isJsonObject(metadata["labels"]) ? metadata["labels"] : {}),
    [options.createdLabel.key]: options.createdLabel.value,
  };
  return stringifyJson(crd);
}

export async function restoreNamespaces(ctx: Context): Promise<void> {
  const { client, plan, options, report } = ctx;
  for (const ns of plan.namespaces) {
    if (ns.exists) continue;
    const md = isJsonObject(ns.captured?.["metadata"]) ? ns.captured["metadata"] : {};
    const body = {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: ns.name,
        ...(md["labels"] || options.createdLabel
          ? {
              labels: {
                ...(isJsonObject(md["labels"]) ? md["labels"] : {}),
                ...(options.createdLabel ? { [options.createdLabel.key]: options.createdLabel.value } : {}),
              },
            }
          : {}),
        ...(md["annotations"] ? { annotations: md["annotations"] } : {}),
      },
    };
    try {
      await client.request({
        method: "POST",
        path: "/api/v1/namespaces",
        query: query(options),
        body: stringifyJson(body as JsonValue),
      });
      report.add({
        kind: "namespace",
        resource: "namespaces",
        name: ns.name,
        outcome: options.dryRun ? "would-create" : "created",
      });
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409) continue;
      if (!isPerObject(e)) throw e;
      report.add({
        kind: "namespace",
        resource: "namespaces",
        name: ns.name,
        outcome: "failed",
        reason: serverMessage(e),
      });
    }
  }
}
