import type { KubeClient } from "../kube/client.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { executePlan } from "./apply.ts";
import type { RestoreOptions } from "./options.ts";
import { buildPlan } from "./plan.ts";
import { ReportBuilder, type RestoreReport } from "./report.ts";

/**
 * Restores a snapshot: verify everything, plan against the live cluster, then write in the order
 * of restore/order.ts. With `dryRun` every write is sent with dryRun=All, so schema and admission
 * errors surface and nothing changes.
 */
export async function restoreSnapshot(
  client: KubeClient,
  storage: StorageBackend,
  ref: string,
  options: RestoreOptions,
  log: Logger = silentLogger,
): Promise<RestoreReport> {
  const plan = await buildPlan(client, storage, ref, options);
  try {
    log.info("restore planned", {
      snapshot: plan.snapshot.id,
      crds: plan.crds.length,
      namespaces: plan.namespaces.filter((n) => !n.exists).length,
      objects: plan.items.length,
      dryRun: options.dryRun,
    });
    const report = new ReportBuilder(plan.snapshot.id, options.dryRun);
    await executePlan(client, plan, options, report, log);
    return report.build();
  } finally {
    await plan.snapshot[Symbol.asyncDispose]();
  }
}
