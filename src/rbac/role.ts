/**
 * The least-privilege ClusterRole crd-backup needs, as a pure function of the CRDs it will touch.
 * Every rule below follows a request the code really makes; test/integration/rbac.test.ts runs a
 * snapshot and a restore as identities holding nothing else.
 *
 * snapshot: list CRDs (src/kube/discovery.ts); list each resource cluster-wide
 *   (src/snapshot/take.ts); get kube-system (the cluster identity, src/kube/cluster.ts) and every
 *   namespace that holds a captured object.
 * restore (src/restore/plan.ts, live.ts, apply.ts): get CRDs (planning, waiting for Established),
 *   create CRDs (a live CRD is compared, never replaced: no update or patch); get namespaces,
 *   create the missing ones; list objects (planning), get them (diffs of skipped objects), create
 *   them (POST), patch them (server-side apply for --existing update, which also creates), and
 *   patch `/status` (server-side apply, --restore-status). No PUT, no DELETE.
 * record (src/journal/record/): its base snapshots (as above, less the `get`s nothing makes on CRDs
 *   and objects), then list and watch of the CRDs, the namespaces and each resource. No writes.
 */

/** One rule of a ClusterRole, as the API writes it. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface ClusterRole {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "ClusterRole";
  metadata: { name: string; labels: Record<string, string> };
  rules: PolicyRule[];
}

/**
 * What the role is for: taking snapshots, restoring them (which includes what planning reads), or
 * recording a journal (`crd-backup record`).
 */
export type RbacMode = "snapshot" | "restore" | "record";

/** The little a rule needs to know of a CRD (a CrdInfo from src/kube/discovery.ts fits). */
export interface RoleCrd {
  group: string;
  plural: string;
  /** Versions with a /status subresource; restore patches it with --restore-status. */
  statusVersions: string[];
}

export interface RoleOptions {
  name: string;
  mode: RbacMode;
  /**
   * The only namespaces a snapshot reads, when they are known by name (literal --include-namespaces):
   * `get` on namespaces is then limited to them and kube-system. Undefined: any namespace.
   */
  namespaces?: string[];
}

const READ = ["get", "list"];
const FOLLOW = ["list", "watch"];
const RESTORE_OBJECTS = ["create", "get", "list", "patch"];

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sorted = (values: Iterable<string>) => [...new Set(values)].sort(byText);

/**
 * The ClusterRole for `crds` in `mode`: CRDs and namespaces first, then one rule per API group
 * (groups and resources sorted), and for restore one more per group for the /status subresources.
 * The same CRDs give the same role, byte for byte, whatever order they come in.
 */
export function buildClusterRole(crds: readonly RoleCrd[], options: RoleOptions): ClusterRole {
  const restore = options.mode === "restore";
  const record = options.mode === "record";
  const rules: PolicyRule[] = [
    {
      apiGroups: ["apiextensions.k8s.io"],
      resources: ["customresourcedefinitions"],
      verbs: restore ? ["create", ...READ] : record ? FOLLOW : READ,
    },
  ];
  if (record) {
    // every namespace is watched (list and watch cannot be limited by name); get: the base snapshots
    rules.push({ apiGroups: [""], resources: ["namespaces"], verbs: ["get", ...FOLLOW] });
  } else if (restore) {
    // a restore's target namespaces (--namespace-map) are not known here; create cannot be limited by name
    rules.push({ apiGroups: [""], resources: ["namespaces"], verbs: ["create", "get"] });
  } else {
    const names = options.namespaces ? sorted(["kube-system", ...options.namespaces]) : undefined;
    rules.push({
      apiGroups: [""],
      resources: ["namespaces"],
      verbs: ["get"],
      ...(names ? { resourceNames: names } : {}),
    });
  }

  const groups = new Map<string, { plurals: string[]; status: string[] }>();
  for (const crd of crds) {
    let g = groups.get(crd.group);
    if (!g) groups.set(crd.group, (g = { plurals: [], status: [] }));
    g.plurals.push(crd.plural);
    if (crd.statusVersions.length > 0) g.status.push(`${crd.plural}/status`);
  }
  for (const group of sorted(groups.keys())) {
    const g = groups.get(group)!;
    rules.push({
      apiGroups: [group],
      resources: sorted(g.plurals),
      verbs: restore ? RESTORE_OBJECTS : record ? FOLLOW : READ,
    });
    if (restore && g.status.length > 0) {
      rules.push({ apiGroups: [group], resources: sorted(g.status), verbs: ["patch"] });
    }
  }
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: {
      name: options.name,
      labels: { "app.kubernetes.io/name": "crd-backup", "app.kubernetes.io/component": options.mode },
    },
    rules: rules.map((r) => ({ ...r, verbs: [...r.verbs] })),
  };
}

/**
 * The namespaces a literal list of --include-namespaces names, or undefined when any namespace can
 * be captured (no list, or a glob in it: RBAC resourceNames cannot match patterns).
 */
export function literalNamespaces(includeNamespaces: readonly string[]): string[] | undefined {
  if (includeNamespaces.length === 0) return undefined;
  return includeNamespaces.some((n) => /[*?]/.test(n)) ? undefined : [...includeNamespaces];
}
