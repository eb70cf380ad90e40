import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import type { KubeClient } from "../../src/kube/client.ts";
import { testEnv } from "./cluster.ts";

export const CHART = fileURLToPath(new URL("../../deploy/helm/crd-backup", import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are free-form; each assertion names its path
export type Manifest = Record<string, any>;

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

// helm's own cache, config and data stay out of the user's home
const HELM_HOME = mkdtempSync(path.join(os.tmpdir(), "crd-backup-helm-"));

/** Runs a tool the test environment built (helm, promtool), without a shell. */
export function runTool(file: string, args: string[], env: Record<string, string> = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: { PATH: process.env["PATH"] ?? "", ...env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export function helm(args: string[]): Promise<ToolResult> {
  return runTool(testEnv().tools.helm, args, {
    // client-go's discovery cache (~/.kube/cache, with --kubeconfig) too: no HOME would put it in the cwd
    HOME: HELM_HOME,
    HELM_CACHE_HOME: path.join(HELM_HOME, "cache"),
    HELM_CONFIG_HOME: path.join(HELM_HOME, "config"),
    HELM_DATA_HOME: path.join(HELM_HOME, "data"),
  });
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  values?: object;
  /** --set-file key=path pairs */
  setFiles?: Record<string, string>;
  /** --api-versions, as `helm template` takes them to stand in for a cluster's discovery */
  apiVersions?: string[];
  /**
   * Render against this cluster (--dry-run=server): `lookup` reads it, as at install and upgrade.
   * Without it, offline, as `helm template` (and helm lint, Argo CD) render: lookup finds nothing.
   */
  kubeconfig?: string;
}

/** Writes values to a file, as a user's values.yaml. */
export function valuesFile(values: object): string {
  const file = path.join(HELM_HOME, `values-${process.hrtime.bigint()}.yaml`);
  // YAML 1.1, as helm reads it: a string "yes" stays a string
  writeFileSync(file, stringify(values, { version: "1.1" }));
  return file;
}

/** `helm template` with the given values (written to a file, as a user's values.yaml). */
export async function helmTemplate(
  options: RenderOptions = {},
): Promise<ToolResult & { objects: Manifest[] }> {
  const file = valuesFile(options.values ?? {});
  const args = [
    "template",
    options.release ?? "crd-backup",
    CHART,
    "--namespace",
    options.namespace ?? "crd-backup",
    "--values",
    file,
    ...Object.entries(options.setFiles ?? {}).flatMap(([k, v]) => ["--set-file", `${k}=${v}`]),
    ...(options.apiVersions ?? []).flatMap((v) => ["--api-versions", v]),
    ...(options.kubeconfig ? ["--dry-run=server", "--kubeconfig", options.kubeconfig] : []),
  ];
  const res = await helm(args);
  const objects =
    res.code === 0
      ? // YAML 1.1, as helm and kubectl read it (a secret volume's defaultMode 0440 is octal)
        parseAllDocuments(res.stdout, { version: "1.1" })
          .map((d) => {
            if (d.errors.length > 0)
              throw new Error(`helm template printed bad YAML: ${d.errors[0]!.message}`);
            return d.toJS() as Manifest | null;
          })
          .filter((d): d is Manifest => d !== null)
      : [];
  return { ...res, objects };
}

/** The collection path of a manifest's kind, from the API server's own discovery. */
export async function collectionOf(admin: KubeClient, m: Manifest, namespace: string): Promise<string> {
  const apiVersion = String(m["apiVersion"]);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const list = JSON.parse((await admin.request({ path: base })).text) as {
    resources: { name: string; kind: string; namespaced: boolean }[];
  };
  const r = list.resources.find((x) => x.kind === m["kind"] && !x.name.includes("/"));
  if (!r) throw new Error(`the API server serves no ${m["kind"]} in ${apiVersion}`);
  return r.namespaced ? `${base}/namespaces/${namespace}/${r.name}` : `${base}/${r.name}`;
}

/** Server-side apply of one manifest (dryRun: validated and admitted, not stored), strict field validation. */
export async function serverSideApply(
  admin: KubeClient,
  m: Manifest,
  options: { dryRun: boolean },
): Promise<Manifest> {
  const namespace = String(m["metadata"]["namespace"] ?? "");
  const res = await admin.request({
    method: "PATCH",
    path: `${await collectionOf(admin, m, namespace)}/${m["metadata"]["name"]}`,
    query: {
      fieldManager: "helm-test",
      force: "true",
      fieldValidation: "Strict",
      ...(options.dryRun ? { dryRun: "All" } : {}),
    },
    body: JSON.stringify(m),
    contentType: "application/apply-patch+yaml",
  });
  return JSON.parse(res.text) as Manifest;
}

/** A kubeconfig holding a token of the ServiceAccount (TokenRequest), as the kubelet mounts one in its pods. */
export async function saKubeconfig(admin: KubeClient, namespace: string, sa: string): Promise<string> {
  const env = testEnv();
  const token = JSON.parse(
    (
      await admin.request({
        method: "POST",
        path: `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`,
        body: JSON.stringify({
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: 3600 },
        }),
      })
    ).text,
  ) as { status: { token: string } };
  const kubeconfig = path.join(env.rootDir, `kubeconfig-${namespace}-${sa}`);
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server: env.apiServer, "certificate-authority": env.caCert } }],
      users: [{ name: sa, user: { token: token.status.token } }],
      contexts: [{ name: "chart", context: { cluster: "test", user: sa, namespace } }],
      "current-context": "chart",
    }),
    { mode: 0o600 },
  );
  return kubeconfig;
}
