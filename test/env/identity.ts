import { writeFileSync } from "node:fs";
import path from "node:path";
import type { KubeClient } from "../../src/kube/client.ts";
import type { EnvironmentInfo } from "./environment.ts";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const NAMESPACE = "crd-backup-test-identities";

async function apply(admin: KubeClient, path: string, body: object): Promise<void> {
  await admin.request({
    method: "PATCH",
    path: `${path}?fieldManager=crd-backup-test&force=true`,
    body: JSON.stringify(body),
    contentType: "application/apply-patch+yaml",
  });
}

/**
 * A non-admin identity for permission tests: a ServiceAccount bound to a ClusterRole with exactly
 * `rules` (none: it can do nothing), with a bearer token from the TokenRequest API. RBAC is real
 * here, so what the identity may not do, the API server refuses. Returns a kubeconfig path.
 */
export async function kubeconfigForIdentity(
  env: EnvironmentInfo,
  admin: KubeClient,
  name: string,
  rules: PolicyRule[],
): Promise<string> {
  await apply(admin, `/api/v1/namespaces/${NAMESPACE}`, {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: NAMESPACE },
  });
  await apply(admin, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${name}`, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name, namespace: NAMESPACE },
  });
  await apply(admin, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name },
    rules,
  });
  await apply(admin, `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [{ kind: "ServiceAccount", name, namespace: NAMESPACE }],
  });
  const res = await admin.request({
    method: "POST",
    path: `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${name}/token`,
    body: JSON.stringify({
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    }),
  });
  const token = (JSON.parse(res.text) as { status: { token: string } }).status.token;
  const file = path.join(env.rootDir, `kubeconfig-${name}`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server: env.apiServer, "certificate-authority": env.caCert } }],
      users: [{ name, user: { token } }],
      contexts: [{ name, context: { cluster: "test", user: name } }],
      "current-context": name,
    }),
    { mode: 0o600 },
  );
  return file;
}
