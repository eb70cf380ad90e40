import type { KubeClient } from "../kube/client.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { executePlan } from "./apply.ts";
import type { RestoreOptions } from "./options.ts";
import { buildPlan } from "./plan.ts";
import { ReportBuilder, type RestoreReport } from "./report.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import { openSource, type SnapshotRef } from "../source/open.ts";
import { resourceVersions } from "./versions.ts";
import { gatherStoredTexts, type Gathered } from "./stored-texts.ts";
import { earlyLiveReads, type LiveReads } from "./plan-live.ts";
import { inPassPlan, type InPassPlan } from "./plan-pass.ts";

/**
 * Restores a snapshot: verify everything, plan against the live cluster, then write in the order
 * of restore/order.ts. With `dryRun` every write is sent with dryRun=All, so schema and admission
 * errors surface and nothing changes.
 */
export async function restoreSnapshot(
  client: KubeClient,
  storage: StorageBackend,
  ref: SnapshotRef,
  options: RestoreOptions,
  log: Logger = silentLogger,
): Promise<RestoreReport> {
  // the source's text digests come from its verification pass, not a pass of their own
  const gathered: Gathered = { texts: undefined };
  const gather = gatherStoredTexts(client, options, gathered);
  let early: LiveReads | undefined;
  let planned: InPassPlan | undefined;
  await using snapshot = await openSource(storage, ref, options.signal, async (manifest) => {
    options.onSourceSize?.(manifest.counts.objects);
    const seen = await gather(manifest);
    // planned during the pass, the live reads started at once (acted on only once it verified all)
    planned = seen && inPassPlan(client, manifest, options, gathered);
    if (seen && planned) return planned.visitor(seen);
    // else the live reads start during the pass, each resource's once its texts are whole
    early = earlyLiveReads(client, manifest, options, gathered);
    return seen;
  });
  log.debug("source fetched and verified", { snapshot: snapshot.id });
  // await: the snapshot is disposed on return
  return await restoreVerified(client, snapshot, options, log, gathered, early, planned);
}

/**
 * The restore of a snapshot already fetched and verified (a drill times the two apart). `gathered`:
 * the stored texts its verification pass gathered (stored-texts.ts); without, planning reads them.
 */
export async function restoreVerified(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  options: RestoreOptions,
  log: Logger = silentLogger,
  gathered?: Gathered,
  early?: LiveReads,
  planned?: InPassPlan,
): Promise<RestoreReport> {
  const plan = await buildPlan(client, snapshot, options, gathered, early, planned);
  log.info("restore planned", {
    snapshot: snapshot.id,
    crds: plan.crds.length,
    namespaces: plan.namespaces.filter((n) => !n.exists).length,
    objects: plan.objects.count,
    ...(plan.prune ? { deletes: plan.prune.count, crdDeletes: plan.prune.crds.length } : {}),
    dryRun: options.dryRun,
  });
  const versions = resourceVersions(plan.resources.values());
  // -o json prints the plan only at the end: the log says the skew before the first write
  for (const v of versions)
    if (v.verdict !== "same")
      log.info("version skew", {
        resource: v.resource,
        archivedVersion: v.archivedVersion,
        verdict: v.verdict,
        storageVersion: v.storageVersion,
        conversion: v.conversion,
        ...(v.webhook !== undefined ? { webhook: v.webhook } : {}),
        ...(v.writtenVersion ? { writtenVersion: v.writtenVersion } : {}),
      });
  const report = new ReportBuilder(snapshot.id, options.dryRun, versions);
  try {
    await executePlan(client, plan, options, report, log);
  } catch (e) {
    report.discard();
    throw e;
  }
  // how hard the server pushed back: a restore slowed by priority and fairness shows it here
  log.info("api flow control", { ...client.flow.stats });
  return report.build();
}

/**
 * A sync (`restore --sync`): the selected objects of the target made equal to the verified source,
 * those it does not have deleted (restore/prune.ts says where), and with `crds` the CRDs it does
 * not have. The same plan, dry run and report as any restore; the report has one entry per delete.
 */
export function syncVerified(
  client: KubeClient,
  snapshot: VerifiedSnapshot,
  options: RestoreOptions,
  crds: boolean,
  log: Logger = silentLogger,
): Promise<RestoreReport> {
  return restoreVerified(client, snapshot, { ...options, sync: { crds } }, log);
}
