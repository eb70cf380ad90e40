/**
 * The API groups kube-apiserver serves itself, not through CRDs: crd-backup never restores a
 * resource of one of these, whatever a manifest says (restore/guards.ts).
 *
 * Taken from kube-apiserver v1.36.4: the REST storage providers of pkg/controlplane/instance.go,
 * their versions' defaults in DefaultAPIResourceConfigSource, plus the apiextensions and
 * kube-aggregator servers it embeds. test/integration/forged-archives.test.ts checks the first
 * list against the discovery of the real test kube-apiserver, so it cannot drift unnoticed.
 *
 * An exact list, not a rule on `.k8s.io`: CRDs may use such groups with an approval annotation
 * (gateway.networking.k8s.io, snapshot.storage.k8s.io, *.x-k8s.io), and those must still restore.
 */

/** Served with the default --runtime-config (a GA version is on). "" is the core group (/api/v1). */
export const BUILTIN_GROUPS_SERVED = [
  "",
  "admissionregistration.k8s.io",
  "apiextensions.k8s.io",
  "apiregistration.k8s.io",
  "apps",
  "authentication.k8s.io",
  "authorization.k8s.io",
  "autoscaling",
  "batch",
  "certificates.k8s.io",
  "coordination.k8s.io",
  "discovery.k8s.io",
  "events.k8s.io",
  "flowcontrol.apiserver.k8s.io",
  "networking.k8s.io",
  "node.k8s.io",
  "policy",
  "rbac.authorization.k8s.io",
  "resource.k8s.io",
  "scheduling.k8s.io",
  "storage.k8s.io",
] as const;

/**
 * Built in but off by default: served only when --runtime-config enables their alpha or beta
 * versions (internal.apiserver.k8s.io/v1alpha1, storagemigration.k8s.io/v1beta1), or by older
 * servers than v1.36 (extensions, whose last resources went in v1.22).
 */
export const BUILTIN_GROUPS_OFF_BY_DEFAULT = [
  "extensions",
  "internal.apiserver.k8s.io",
  "storagemigration.k8s.io",
] as const;

const BUILTIN = new Set<string>([...BUILTIN_GROUPS_SERVED, ...BUILTIN_GROUPS_OFF_BY_DEFAULT]);

/** Whether kube-apiserver serves `group` itself. */
export function isBuiltinGroup(group: string): boolean {
  return BUILTIN.has(group);
}
