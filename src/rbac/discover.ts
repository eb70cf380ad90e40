import type { KubeClient } from "../kube/client.ts";
import { discoverCrds } from "../kube/discovery.ts";
import { resourceSelected, type Filters } from "../objects/filters.ts";
import { buildClusterRole, literalNamespaces, type ClusterRole, type RbacMode } from "./role.ts";

export interface ClusterRoleOptions {
  name: string;
  mode: RbacMode;
  /** The same filters a snapshot or restore would be given: only the resources they select get rules. */
  filters: Filters;
  signal?: AbortSignal;
}

/**
 * The minimal ClusterRole for the cluster's CRDs as they are now, selected like a snapshot selects
 * them. A CRD added later needs the role regenerated: without it, a snapshot is partial and names it.
 */
export async function clusterRoleFor(
  client: KubeClient,
  options: ClusterRoleOptions,
): Promise<{ role: ClusterRole; crds: number }> {
  const crds = (await discoverCrds(client, { pageSize: 500, signal: options.signal })).filter((c) =>
    resourceSelected(options.filters, c.group, c.plural),
  );
  const role = buildClusterRole(crds, {
    name: options.name,
    mode: options.mode,
    namespaces:
      options.mode === "snapshot" ? literalNamespaces(options.filters.includeNamespaces) : undefined,
  });
  return { role, crds: crds.length };
}
