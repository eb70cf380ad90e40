/**
 * The last step of a sync (restore/order.ts, step 6): the deletes its plan found, after everything
 * is written, phase by phase (dependents before owners), then the CRDs (--sync-crds). Every delete
 * is conditional on the uid read, so an object recreated since the plan is left alone; a delete
 * that finalizers hold is reported `terminating`, naming them.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { KubeApiError } from "../errors.ts";
import { Limiter } from "../concurrency.ts";
import { CRD_PATH } from "../kube/discovery.ts";
import { isJsonObject, parseJson, type JsonValue } from "../json/json.ts";
import { getJson, objectPath } from "../objects/live.ts";
import { isPerObject, serverMessage, type Context } from "./apply-context.ts";
import type { CrdPrune, PruneItem, PrunePlan } from "./prune.ts";
import type { Outcome, ReportEntry } from "./report.ts";

/** How often a deleted CRD is checked for being gone (its objects are removed first, by the API server). */
const CRD_GONE_POLL_MS = 250;

export async function executePrune(ctx: Context, prune: PrunePlan): Promise<void> {
  for (const { resource, reason } of prune.uncovered)
    ctx.log.warn("sync deletes nothing of this resource", { resource, reason });
  for (const phase of prune.phases) {
    const limiter = new Limiter(ctx.options.concurrency);
    for (const item of phase) await limiter.submit(() => deleteObject(ctx, item));
    await limiter.drain();
  }
  for (const crd of prune.crds) await deleteCrd(ctx, crd);
}

async function deleteObject(ctx: Context, item: PruneItem): Promise<void> {
  const r = item.resource;
  const entry = {
    kind: "object" as const,
    resource: r.key,
    ...(item.namespace !== undefined ? { namespace: item.namespace } : {}),
    name: item.name,
  };
  const path = objectPath(r.group, r.version, r.plural, item.namespace, item.name);
  ctx.report.add({ ...entry, ...(await deleted(ctx, path, item.uid)) });
}

async function deleteCrd(ctx: Context, crd: CrdPrune): Promise<void> {
  const entry = { kind: "crd" as const, resource: "customresourcedefinitions", name: crd.name };
  const path = `${CRD_PATH}/${crd.name}`;
  let outcome = await deleted(ctx, path, crd.uid);
  // the API server deletes a CRD's objects before the CRD: done once it is gone, or held
  if (outcome.outcome === "terminating") {
    const deadline = Date.now() + ctx.options.waitTimeoutMs;
    for (;;) {
      const live = await getJson(ctx.client, path, ctx.options.signal);
      if (!live) {
        outcome = { outcome: "deleted" };
        break;
      }
      if (Date.now() > deadline) {
        outcome = { outcome: "terminating", reason: heldBy(finalizersOf(live) ?? []) };
        break;
      }
      await sleep(CRD_GONE_POLL_MS, undefined, { signal: ctx.options.signal });
    }
  }
  ctx.report.add({ ...entry, ...outcome });
}

/** One DELETE, conditional on `uid`, and what its answer means. */
async function deleted(
  ctx: Context,
  path: string,
  uid: string,
): Promise<{ outcome: Outcome } & Pick<ReportEntry, "reason">> {
  const { client, options } = ctx;
  try {
    const res = await client.request({
      method: "DELETE",
      path,
      // with a body the API server reads DeleteOptions from it alone, ignoring the query: dryRun goes here
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "DeleteOptions",
        preconditions: { uid },
        ...(options.dryRun ? { dryRun: ["All"] } : {}),
      }),
      signal: options.signal,
    });
    const held = finalizersOf(parseJson(res.text));
    if (options.dryRun)
      return { outcome: "would-delete", ...(held ? { reason: `${heldBy(held)} (once deleted)` } : {}) };
    return held ? { outcome: "terminating", reason: heldBy(held) } : { outcome: "deleted" };
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404)
      return { outcome: options.dryRun ? "would-delete" : "deleted", reason: "already gone" };
    if (e instanceof KubeApiError && e.status === 409)
      return { outcome: "skipped", reason: "replaced since it was read (another uid): left as it is" };
    if (!isPerObject(e)) throw e;
    return { outcome: "failed", reason: serverMessage(e) };
  }
}

const heldBy = (finalizers: readonly string[]) =>
  `waiting on finalizer${finalizers.length === 1 ? "" : "s"} ${finalizers.join(", ")}`;

/** The finalizers of an object whose deletion they hold (a deletionTimestamp is set); else undefined. */
export function finalizersOf(answer: JsonValue): string[] | undefined {
  if (!isJsonObject(answer) || answer["kind"] === "Status" || !isJsonObject(answer["metadata"]))
    return undefined;
  const md = answer["metadata"];
  const finalizers = Array.isArray(md["finalizers"]) ? md["finalizers"].map(String) : [];
  return md["deletionTimestamp"] && finalizers.length > 0 ? finalizers : undefined;
}
