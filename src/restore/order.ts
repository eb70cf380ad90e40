/**
 * The one restore order (like Velero's restore priorities, in one commented place):
 *   1. CRDs, each waited for until Established and NamesAccepted: nothing of a kind can be
 *      created before the API server serves it.
 *   2. Namespaces that hold restored objects and do not exist: namespaced objects need them.
 *   3. Cluster-scoped custom resources, then namespaced ones: a namespaced object may be owned by
 *      a cluster-scoped one, never the reverse.
 *   4. Within each scope, owners before the objects whose ownerReferences name them, so the owner's
 *      new uid is known when the dependent is created (depth = the longest owner chain inside the
 *      restore; a cycle, which Kubernetes forbids but a tampered archive might hold, is cut).
 *   5. Status last, through the /status subresource, when asked for.
 */
export interface OrderItem {
  uid?: string;
  ownerUids: string[];
  namespaced: boolean;
}

/** The phase of each item: every cluster-scoped phase first, then namespaced ones, each by owner depth. */
export function restorePhases(items: readonly OrderItem[]): number[] {
  const byUid = new Map<string, number>();
  items.forEach((item, i) => item.uid && byUid.set(item.uid, i));
  const depth = new Array<number>(items.length).fill(-1);
  const visiting = new Set<number>();
  const depthOf = (i: number): number => {
    if (depth[i]! >= 0) return depth[i]!;
    if (visiting.has(i)) return 0; // a cycle: cut it here
    visiting.add(i);
    let d = 0;
    for (const owner of items[i]!.ownerUids) {
      const j = byUid.get(owner);
      if (j !== undefined && j !== i) d = Math.max(d, depthOf(j) + 1);
    }
    visiting.delete(i);
    depth[i] = d;
    return d;
  };
  const maxDepth = items.reduce((m, _, i) => Math.max(m, depthOf(i)), 0);
  // every cluster-scoped phase precedes every namespaced phase
  return items.map((item, i) => (item.namespaced ? maxDepth + 1 : 0) + depth[i]!);
}
