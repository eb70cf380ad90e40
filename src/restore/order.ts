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
 *   6. With --sync, after everything is written: the deletes of what the source does not have,
 *      in this order backwards (namespaced objects before cluster-scoped ones, dependents before
 *      their owners: restore/prune.ts deletePhases), then the CRDs with --sync-crds. Last, so a
 *      sync that fails part-way has removed nothing the source state would not also lack.
 * restore/decisions.ts turns scope and depth into phases.
 */

/**
 * The owner depth of every object that has owners in the restore. `dependents` maps an object
 * (by ordinal) to its owners' uids; `owners` maps a uid to the object in the restore that has it.
 * Objects in neither have depth 0; only objects in an owner chain cost memory.
 */
export function ownerDepths(
  dependents: ReadonlyMap<number, readonly string[]>,
  owners: ReadonlyMap<string, number>,
): Map<number, number> {
  const depth = new Map<number, number>();
  const visiting = new Set<number>();
  const depthOf = (i: number): number => {
    const known = depth.get(i);
    if (known !== undefined) return known;
    if (visiting.has(i)) return 0; // a cycle: cut it here
    visiting.add(i);
    let d = 0;
    for (const owner of dependents.get(i) ?? []) {
      const j = owners.get(owner);
      if (j !== undefined && j !== i) d = Math.max(d, depthOf(j) + 1);
    }
    visiting.delete(i);
    depth.set(i, d);
    return d;
  };
  for (const i of dependents.keys()) depthOf(i);
  return depth;
}
