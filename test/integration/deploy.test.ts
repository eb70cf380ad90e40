import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { cliNodeEnv, cliNodeFlags } from "../../cli/node-flags.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import {
  allowedOf,
  BUILT_IN_READS,
  secretReads,
  serviceAccountUser,
  waitAllowed,
  type Access,
} from "../support/access.ts";
import { adminClient, uniqueName } from "../support/cluster.ts";

const DEPLOY = fileURLToPath(new URL("../../deploy/", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are free-form; each assertion names its path
type Manifest = Record<string, any>;

interface Kustomization {
  namespace: string;
  resources: string[];
  labels?: { pairs: Record<string, string> }[];
}

function readDocuments(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(path.join(DEPLOY, file), "utf8"))
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
      return d.toJS() as Manifest | null;
    })
    .filter((d): d is Manifest => d !== null);
}

const kustomization = readDocuments("kustomization.yaml")[0] as unknown as Kustomization;

/** What `kustomize build deploy/` does with this kustomization: namespace and labels on every object. */
function kustomized(): Manifest[] {
  const labels = Object.assign({}, ...(kustomization.labels ?? []).map((l) => l.pairs)) as Record<
    string,
    string
  >;
  return kustomization.resources.flatMap(readDocuments).map((m) => ({
    ...m,
    metadata: {
      ...m["metadata"],
      labels: { ...m["metadata"]["labels"], ...labels },
      ...(CLUSTER_SCOPED.has(m["kind"]) ? {} : { namespace: kustomization.namespace }),
    },
  }));
}

const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
/** Creation order: what others refer to first. */
const ORDER = [
  "Namespace",
  "ClusterRole",
  "ServiceAccount",
  "ClusterRoleBinding",
  "ConfigMap",
  "Secret",
  "CronJob",
  "Deployment",
];

/** The collection path of a kind, from the API server's own discovery. */
async function collection(admin: KubeClient, m: Manifest, namespace: string): Promise<string> {
  const apiVersion = String(m["apiVersion"]);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const list = JSON.parse((await admin.request({ path: base })).text) as {
    resources: { name: string; kind: string; namespaced: boolean }[];
  };
  const r = list.resources.find((x) => x.kind === m["kind"] && !x.name.includes("/"));
  if (!r) throw new Error(`the API server serves no ${m["kind"]} in ${apiVersion}`);
  return r.namespaced ? `${base}/namespaces/${namespace}/${r.name}` : `${base}/${r.name}`;
}

async function dryRunCreate(admin: KubeClient, m: Manifest, namespace: string): Promise<Manifest> {
  const body = m["metadata"]["namespace"] ? { ...m, metadata: { ...m["metadata"], namespace } } : m;
  const res = await admin.request({
    method: "POST",
    path: await collection(admin, m, namespace),
    query: { dryRun: "All", fieldValidation: "Strict" },
    body: JSON.stringify(body),
  });
  return JSON.parse(res.text) as Manifest;
}

/** The pod a CronJob would start, as a Pod the API server (and Pod Security admission) can judge. */
function podOf(cronJob: Manifest, name: string): Manifest {
  const template = cronJob["spec"]["jobTemplate"]["spec"]["template"];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: template.metadata?.labels },
    spec: template.spec,
  };
}

describe("deploy/ manifests", () => {
  let admin: KubeClient;
  // the manifests go into this real, fresh namespace (server-side dry run); its labels are deploy's
  const namespace = uniqueName("deploy");
  const objects = kustomized();
  const byKind = (kind: string) => objects.filter((m) => m["kind"] === kind);
  const cronJob = byKind("CronJob")[0]!;
  const drill = readDocuments("drill-cronjob.yaml")[0]!;

  beforeAll(async () => {
    admin = await adminClient();
    const ns = byKind("Namespace")[0]!;
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, labels: ns["metadata"]["labels"] },
      }),
    });
  });
  afterAll(() => admin.close());

  it("every object of every file in kustomization.yaml is accepted by the API server (server-side dry-run create)", async () => {
    expect([...new Set(objects.map((m) => m["kind"]))].sort()).toEqual([...ORDER].sort());
    const sorted = [...objects].sort((a, b) => ORDER.indexOf(a["kind"]) - ORDER.indexOf(b["kind"]));
    for (const m of sorted) {
      if (CLUSTER_SCOPED.has(m["kind"])) expect(m["metadata"]["namespace"], m["kind"]).toBeUndefined();
      else expect(m["metadata"]["namespace"], m["kind"]).toBe(kustomization.namespace);
      const created = await dryRunCreate(admin, m, namespace);
      expect(created["metadata"]["name"]).toBe(m["metadata"]["name"]);
      expect(created["metadata"]["labels"]).toMatchObject({ "app.kubernetes.io/name": "crd-backup" });
    }
    // the example drill CronJob, outside the kustomization, is valid too
    await dryRunCreate(admin, drill, namespace);
  });

  it("the CronJobs' pods pass the restricted Pod Security Standard, which the namespace enforces", async () => {
    const ns = byKind("Namespace")[0]!;
    expect(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    // created for real (after the dry runs): the ServiceAccount admission plugin refuses pods of a missing one
    const sa = byKind("ServiceAccount")[0]!;
    await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/${namespace}/serviceaccounts`,
      body: JSON.stringify({ ...sa, metadata: { ...sa["metadata"], namespace } }),
    });
    for (const [job, name] of [
      [cronJob, "crd-backup-pod"],
      [drill, "crd-backup-drill-pod"],
    ] as const) {
      const created = await dryRunCreate(admin, podOf(job, name), namespace);
      expect(created["spec"]["serviceAccountName"]).toBe("crd-backup");
    }
    // and the check has teeth: the same pod as root is refused
    const root = podOf(cronJob, "crd-backup-as-root");
    root["spec"] = {
      ...root["spec"],
      securityContext: { ...root["spec"]["securityContext"], runAsNonRoot: false, runAsUser: 0 },
    };
    const err = await dryRunCreate(admin, root, namespace).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(403);
    expect((err as KubeApiError).message).toMatch(/violates PodSecurity "restricted/);
  });

  it("the CronJob has the properties issue 5 asks for", () => {
    const spec = cronJob["spec"];
    expect(spec.concurrencyPolicy).toBe("Forbid");
    expect(spec.timeZone).toEqual(expect.any(String));
    expect(spec.startingDeadlineSeconds).toBeGreaterThan(0);
    expect(spec.successfulJobsHistoryLimit).toBeGreaterThan(0);
    expect(spec.failedJobsHistoryLimit).toBeGreaterThan(0);
    const job = spec.jobTemplate.spec;
    expect(job.backoffLimit).toBeGreaterThanOrEqual(0);
    expect(job.activeDeadlineSeconds).toBeGreaterThan(0);
    // partial (3) and usage (2) fail the Job at once instead of being retried
    expect(job.podFailurePolicy.rules[0]).toMatchObject({
      action: "FailJob",
      onExitCodes: { operator: "In", values: [2, 3] },
    });

    const pod = job.template.spec;
    expect(pod.serviceAccountName).toBe(byKind("ServiceAccount")[0]!["metadata"]["name"]);
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    const [c] = pod.containers;
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.resources.requests.memory).toBe("384Mi");
    expect(c.resources.limits.memory).toBe("512Mi");
    // a read-only root needs a writable /tmp (TMPDIR) and a writable directory for the metrics file
    const mounts = new Map<string, string>(c.volumeMounts.map((v: Manifest) => [v["mountPath"], v["name"]]));
    const emptyDirs = new Set(
      pod.volumes.filter((v: Manifest) => v["emptyDir"]).map((v: Manifest) => v["name"]),
    );
    expect(emptyDirs.has(mounts.get("/tmp"))).toBe(true);
    expect(c.env).toContainEqual({ name: "TMPDIR", value: "/tmp" });
    const metricsFile = String(c.args.find((a: string) => a.startsWith("--metrics-file=")).split("=")[1]);
    expect(emptyDirs.has(mounts.get(path.dirname(metricsFile)))).toBe(true);
    // a snapshot, with retention after it
    expect(c.args[0]).toBe("snapshot");
    expect(c.args.some((a: string) => a.startsWith("--keep-"))).toBe(true);
    // options from the ConfigMap, credentials from the Secret (optional: IRSA needs none)
    const configMap = byKind("ConfigMap")[0]!;
    const secret = byKind("Secret")[0]!;
    expect(c.envFrom).toEqual([
      { configMapRef: { name: configMap["metadata"]["name"] } },
      { secretRef: { name: secret["metadata"]["name"], optional: true } },
    ]);
    expect(configMap["data"]["CRD_BACKUP_STORAGE"]).toMatch(/^s3:\/\//);
    expect(Object.keys(secret["stringData"]).sort()).toEqual(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
  });

  it("binds the read-only ClusterRole to the CronJob's ServiceAccount, and the role writes nothing", () => {
    const [role] = byKind("ClusterRole");
    const [binding] = byKind("ClusterRoleBinding");
    const [sa] = byKind("ServiceAccount");
    expect(binding!["roleRef"]).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: role!["metadata"]["name"],
    });
    expect(binding!["subjects"]).toEqual([
      { kind: "ServiceAccount", name: sa!["metadata"]["name"], namespace: kustomization.namespace },
    ]);
    const verbs = new Set(role!["rules"].flatMap((r: Manifest) => r["verbs"]));
    expect([...verbs].sort()).toEqual(["get", "list"]);
  });

  it("the shipped roles, applied to the real API server, read CRDs and namespaces but no Secret and no other built-in resource", async () => {
    // every ClusterRole of the kustomization (crd-backup-read, crd-backup-record), bound for real
    // to a ServiceAccount of its own; the authorizer then answers SubjectAccessReviews as for a token
    const needs: Record<string, Access[]> = {
      "crd-backup-read": [
        { verb: "list", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
        { verb: "get", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
        { verb: "get", resource: "namespaces", name: "kube-system" },
      ],
      "crd-backup-record": [
        { verb: "watch", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
        { verb: "get", resource: "namespaces", name: "kube-system" },
        { verb: "watch", resource: "namespaces" },
      ],
    };
    const roles = byKind("ClusterRole");
    expect(roles.map((r) => r["metadata"]["name"]).sort()).toEqual(Object.keys(needs).sort());
    for (const role of roles) {
      const name = uniqueName(role["metadata"]["name"]);
      const rbac = "/apis/rbac.authorization.k8s.io/v1";
      await admin.request({
        method: "POST",
        path: `${rbac}/clusterroles`,
        body: JSON.stringify({ ...role, metadata: { ...role["metadata"], name } }),
      });
      await admin.request({
        method: "POST",
        path: `${rbac}/clusterrolebindings`,
        body: JSON.stringify({
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
          subjects: [{ kind: "ServiceAccount", name, namespace }],
        }),
      });
      const who = serviceAccountUser(namespace, name);
      // what it needs is allowed (so the refusals below are RBAC's, not a binding that never took)
      await waitAllowed(admin, who, needs[role["metadata"]["name"]]!);
      // the S3 credentials Secret in its own namespace, and every other Secret: refused
      const secret = byKind("Secret")[0]!["metadata"]["name"];
      expect(
        await allowedOf(admin, who, [...secretReads(namespace, secret), ...BUILT_IN_READS]),
        name,
      ).toEqual([]);
      // and no "*" rule, which would read whatever the cluster serves, now or later
      for (const rule of role["rules"] as Manifest[]) {
        expect(rule["apiGroups"], name).not.toContain("*");
        expect(rule["resources"], name).not.toContain("*");
      }
    }
  });

  it("the Dockerfile's runtime stage is Node 24, runs as a numeric non-root user, and holds only the bundled CLI", () => {
    const lines = readFileSync(path.join(DEPLOY, "Dockerfile"), "utf8")
      .replace(/\\\n/g, " ")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    const args = new Map(
      lines.filter((l) => l.startsWith("ARG ")).map((l) => l.slice(4).split("=") as [string, string]),
    );
    const stages: { from: string; name?: string; lines: string[] }[] = [];
    for (const l of lines) {
      const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
      if (from)
        stages.push({
          from: from[1]!.replace(/^\$\{(\w+)\}$/, (_, a: string) => args.get(a) ?? a),
          name: from[2],
          lines: [],
        });
      else stages.at(-1)?.lines.push(l);
    }
    const runtime = stages.at(-1)!;
    expect(runtime.from).toMatch(/node(js)?[:-]?24/);
    for (const s of stages) expect(s.from).toMatch(/node(js)?[:-]?24/);
    const user = runtime.lines.filter((l) => l.startsWith("USER ")).at(-1);
    expect(user).toMatch(/^USER [1-9][0-9]*(:[0-9]+)?$/);
    const entrypoint = JSON.parse(
      runtime.lines.find((l) => l.startsWith("ENTRYPOINT "))!.slice(11),
    ) as string[];
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    expect(entrypoint.slice(1, -1)).toEqual(cliNodeFlags()); // the flags the shebang passes
    const env = runtime.lines.filter((l) => l.startsWith("ENV ")).join(" ");
    for (const [name, value] of Object.entries(cliNodeEnv())) expect(env).toContain(`${name}=${value}`); // and its environment
    expect(Object.keys(cliNodeEnv())).toContain("MALLOC_ARENA_MAX");
    expect(entrypoint.at(-1)).toBe(`/app/${pkg.bin["crd-backup"]}`);
    // the bundle needs no node_modules (test/integration/bundle.test.ts): the image has none, so
    // no devDependency (the `node` package is one) can reach it; package.json gives the version
    const copied = runtime.lines
      .filter((l) => l.startsWith("COPY "))
      .map((l) =>
        l
          .split(/\s+/)
          .slice(-2)
          .join(" ")
          .replace(/^\/src\//, ""),
      );
    // cli/bundle.ts writes the entry, its chunks and the licence texts into the bin's folder
    const bundleDir = path.dirname(pkg.bin["crd-backup"]!);
    expect(copied.sort()).toEqual([`${bundleDir} ${bundleDir}`, "LICENSE ./", "package.json ./"].sort());

    // everything the build copies from the context gets past .dockerignore
    const allowed = readFileSync(path.join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("!"))
      .map((l) => l.slice(1).replace(/\/$/, ""));
    const fromContext = stages
      .flatMap((s) => s.lines)
      .filter((l) => l.startsWith("COPY ") && !l.includes("--from="))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(fromContext.length).toBeGreaterThan(0);
    for (const f of fromContext) expect(allowed, f).toContain(f);
  });
});
