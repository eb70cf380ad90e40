import type { KubeClient } from "../../src/kube/client.ts";

export interface Access {
  verb: string;
  resource: string;
  /** "" (or absent): the core group */
  group?: string;
  /** absent: cluster-wide (every namespace) */
  namespace?: string;
  name?: string;
}

/** A ServiceAccount as a token of it authenticates: its user name and its groups. */
export function serviceAccountUser(namespace: string, name: string): { user: string; groups: string[] } {
  return {
    user: `system:serviceaccount:${namespace}:${name}`,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
  };
}

/** Whether the API server's authorizer (RBAC, for real) lets `who` do `access`: a SubjectAccessReview. */
export async function allowed(
  admin: KubeClient,
  who: { user: string; groups: string[] },
  access: Access,
): Promise<boolean> {
  const res = await admin.request({
    method: "POST",
    path: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    body: JSON.stringify({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: who.user,
        groups: who.groups,
        resourceAttributes: {
          verb: access.verb,
          resource: access.resource,
          group: access.group ?? "",
          ...(access.namespace ? { namespace: access.namespace } : {}),
          ...(access.name ? { name: access.name } : {}),
        },
      },
    }),
  });
  return (JSON.parse(res.text) as { status: { allowed?: boolean } }).status.allowed === true;
}

/** Reading Secrets in every way RBAC knows: get, list and watch, cluster-wide and in `namespace`. */
export function secretReads(namespace: string, name?: string): Access[] {
  return ["get", "list", "watch"].flatMap((verb) => [
    { verb, resource: "secrets" },
    { verb, resource: "secrets", namespace },
    ...(name && verb === "get" ? [{ verb, resource: "secrets", namespace, name }] : []),
  ]);
}

/** Built-in resources a custom-resource backup never reads. */
export const BUILT_IN_READS: Access[] = [
  ...secretReads("kube-system"),
  { verb: "list", resource: "configmaps" },
  { verb: "list", resource: "pods" },
  { verb: "list", resource: "serviceaccounts" },
  { verb: "create", resource: "serviceaccounts/token", namespace: "kube-system", name: "default" },
  { verb: "list", resource: "deployments", group: "apps" },
  { verb: "list", resource: "clusterroles", group: "rbac.authorization.k8s.io" },
];

/** The accesses of `list` that `who` is allowed, as readable strings (expect it to be []). */
export async function allowedOf(
  admin: KubeClient,
  who: { user: string; groups: string[] },
  list: Access[],
): Promise<string[]> {
  const out: string[] = [];
  for (const a of list) if (await allowed(admin, who, a)) out.push(describe(a));
  return out;
}

function describe(a: Access): string {
  const resource = a.group ? `${a.resource}.${a.group}` : a.resource;
  return `${a.verb} ${resource}${a.namespace ? ` in ${a.namespace}` : ""}${a.name ? ` ${a.name}` : ""}`;
}

/**
 * Waits until `who` is allowed every access of `list` (the authorizer learns of a new binding from
 * its informers, a moment after it is stored), and fails naming what is still refused.
 */
export async function waitAllowed(
  admin: KubeClient,
  who: { user: string; groups: string[] },
  list: Access[],
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const granted = new Set(await allowedOf(admin, who, list));
    const refused = list.filter((a) => !granted.has(describe(a)));
    if (refused.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${who.user} is still refused: ${refused.map(describe).join(", ")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
