/**
 * The delete half of a sync's plan (restore/prune.ts decides, this gathers): the live objects the
 * plan's one read found that the source does not have, and with --sync-crds the live CRDs the
 * source does not have.
 */
import type { ManifestResource } from "../archive/manifest.ts";
import { CrdBackupError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { discoverCrds } from "../kube/discovery.ts";
import { isJsonObject } from "../json/json.ts";
import { deletePhases, pruneCandidates, type CrdPrune, type PrunePlan, type SyncScope } from "./prune.ts";
import type { ResourcePlan } from "./types.ts";
import type { LiveObject } from "../objects/live.ts";

export interface PruneInputs {
  resources: Iterable<ResourcePlan>;
  manifestResources: readonly ManifestResource[];
  scope: SyncScope;
  /** The live objects the source has (the plan's read found them under its objects' keys). */
  inSource: ReadonlySet<LiveObject>;
  /** CRD names the source holds. */
  archivedCrds: ReadonlySet<string>;
  crds: boolean;
  signal?: AbortSignal;
}

export async function planPrune(client: KubeClient, inputs: PruneInputs): Promise<PrunePlan> {
  const errors = new Map(
    inputs.manifestResources
      .filter((r) => r.errors.length > 0)
      .map((r) => [`${r.plural}.${r.group}`, r.errors[0]!.message]),
  );
  const { items, uncovered } = pruneCandidates(
    inputs.resources,
    inputs.scope,
    (live) => inputs.inSource.has(live),
    (resource) => errors.get(resource),
  );
  const crds = inputs.crds ? await crdsToDelete(client, inputs) : [];
  return { phases: deletePhases(items), count: items.length, crds, uncovered };
}

/** Live CRDs both filters select that the source does not hold. */
async function crdsToDelete(client: KubeClient, inputs: PruneInputs): Promise<CrdPrune[]> {
  const partial = inputs.scope.partial();
  if (partial)
    throw new CrdBackupError(
      "USAGE",
      `--sync-crds deletes whole CRDs, with their objects in every namespace, but ${partial}`,
    );
  const found: CrdPrune[] = [];
  await discoverCrds(client, { pageSize: 500, signal: inputs.signal }, (info, raw) => {
    if (inputs.archivedCrds.has(info.name) || !inputs.scope.coversResource(info.group, info.plural)) return;
    const md = isJsonObject(raw["metadata"]) ? raw["metadata"] : {};
    found.push({ name: info.name, uid: String(md["uid"]) });
  });
  return found;
}
