import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments, stringify } from "yaml";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { ClusterRole } from "../../src/rbac/role.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, clientFor, testEnv, uniqueName } from "../support/cluster.ts";
import { spoolDir, startRecorder, makeCrd } from "../support/recorder.ts";
import {
  allowedOf,
  BUILT_IN_READS,
  secretReads,
  serviceAccountUser,
  waitAllowed,
  type Access,
} from "../support/access.ts";
import {
  CHART,
  helm,
  helmTemplate,
  saKubeconfig,
  serverSideApply,
  valuesFile,
  type Manifest,
} from "../support/helm.ts";

const DEPLOY = fileURLToPath(new URL("../../deploy/", import.meta.url));

/** The value sets a user is likely to install with; each is linted, rendered and dry-run. */
const VALUE_SETS: Record<string, object> = {
  defaults: {},
  existingSecret: { credentials: { existingSecret: "crd-backup-s3" } },
  irsa: {
    serviceAccount: {
      annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/crd-backup" },
    },
  },
  drill: {
    drill: {
      enabled: true,
      targetKubeconfigSecret: { name: "scratch", key: "config" },
      targetContext: "dr",
      identitySecret: { name: "drill-identity", key: "key.txt" },
    },
  },
  recorder: { recorder: { enabled: true, flushInterval: "30s", baseInterval: "24h", spoolSize: "1Gi" } },
  groups: { rbac: { groups: ["cert-manager.io", "monitoring.coreos.com"] }, recorder: { enabled: true } },
  allGroups: { rbac: { allGroups: true }, recorder: { enabled: true } },
  recipients: { encryption: { recipientsConfigMap: { name: "crd-backup-recipients", key: "recipients" } } },
  schedule: { snapshot: { mode: "schedule" } },
  standby: {
    rbac: { groups: ["cert-manager.io", "monitoring.coreos.com"] },
    standby: {
      enabled: true,
      syncCrds: true,
      cluster: "5f0c",
      credentialsSecret: "crd-backup-s3-read-only",
      identitySecret: { name: "standby-identity", key: "key.txt" },
    },
    signing: { trustedSignersConfigMap: { name: "crd-backup-signers", key: "allowed_signers" } },
  },
  signing: {
    signing: {
      keySecret: { name: "crd-backup-signing", key: "id_ed25519" },
      trustedSignersConfigMap: { name: "crd-backup-signers", key: "allowed_signers" },
    },
    drill: { enabled: true, targetKubeconfigSecret: { name: "scratch", key: "config" } },
    recorder: { enabled: true },
  },
  placement: {
    nodeSelector: { "kubernetes.io/os": "linux" },
    tolerations: [{ key: "backup", operator: "Exists", effect: "NoSchedule" }],
    priorityClassName: "system-cluster-critical",
    podLabels: { team: "platform" },
    snapshot: { resources: { requests: { cpu: "200m", memory: "512Mi" }, limits: { memory: "1Gi" } } },
    filters: {
      includeGroups: ["cert-manager.io", "*.example.com"],
      excludeNamespaces: ["kube-*"],
      selector: "backup!=no",
    },
  },
};

const podSpecs = (objects: Manifest[]): [string, Manifest][] =>
  objects.flatMap((m): [string, Manifest][] => {
    if (m["kind"] === "CronJob")
      return [[m["metadata"]["name"], m["spec"]["jobTemplate"]["spec"]["template"]]];
    if (m["kind"] === "Deployment") return [[m["metadata"]["name"], m["spec"]["template"]]];
    return [];
  });

const find = (objects: Manifest[], kind: string, name?: string) =>
  objects.filter((m) => m["kind"] === kind && (name === undefined || m["metadata"]["name"] === name));

const rulesOf = (objects: Manifest[], name: string): Manifest[] =>
  find(objects, "ClusterRole", name)[0]!["rules"];

/** What every snapshot role holds (deploy/clusterrole.yaml): CRDs, and namespaces to get. */
const READ_BASE = [
  { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get", "list"] },
  { apiGroups: [""], resources: ["namespaces"], verbs: ["get"] },
];
/** What every recorder role holds (deploy/recorder-rbac.yaml). */
const RECORD_BASE = [
  { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["list", "watch"] },
  { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
];

/** The drill with an age identity in the cluster. */
const DRILL_IDENTITY = {
  enabled: true,
  targetKubeconfigSecret: { name: "scratch", key: "config" },
  identitySecret: { name: "drill-identity", key: "key.txt" },
};

async function render(values: object, options: Parameters<typeof helmTemplate>[0] = {}): Promise<Manifest[]> {
  const res = await helmTemplate({ ...options, values });
  expect(res.code, res.stderr).toBe(0);
  return res.objects;
}

function readDeploy(file: string): Manifest[] {
  // YAML 1.1, as kubectl and helm read it (0440 is octal)
  return parseAllDocuments(readFileSync(path.join(DEPLOY, file), "utf8"), { version: "1.1" })
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

describe("the Helm chart (deploy/helm/crd-backup)", () => {
  it("helm lint --strict passes with the defaults and with every value set", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-lint-"));
    for (const [name, values] of Object.entries(VALUE_SETS)) {
      const file = path.join(dir, `${name}.yaml`);
      writeFileSync(file, stringify(values, { version: "1.1" }));
      const res = await helm(["lint", "--strict", CHART, "--values", file]);
      expect(res.code, `${name}: ${res.stdout}${res.stderr}`).toBe(0);
      expect(res.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    }
  });

  it("renders the resources each value set asks for, and nothing else", async () => {
    const kinds = async (values: object) =>
      (await render(values)).map((m) => `${m["kind"]}/${m["metadata"]["name"]}`).sort();
    const base = [
      "ClusterRole/crd-backup-read",
      "ClusterRoleBinding/crd-backup-read",
      "ConfigMap/crd-backup",
      "ServiceAccount/crd-backup",
    ];
    expect(await kinds({})).toEqual([...base, "CronJob/crd-backup"].sort());
    expect(await kinds(VALUE_SETS["drill"]!)).toEqual(
      [...base, "CronJob/crd-backup", "CronJob/crd-backup-drill"].sort(),
    );
    expect(await kinds(VALUE_SETS["recorder"]!)).toEqual(
      [
        ...base,
        "ClusterRole/crd-backup-record",
        "ClusterRoleBinding/crd-backup-record",
        "CronJob/crd-backup",
        "Deployment/crd-backup-recorder",
        "Service/crd-backup-recorder-metrics",
        "ServiceAccount/crd-backup-recorder",
      ].sort(),
    );
    expect(await kinds(VALUE_SETS["schedule"]!)).toEqual(
      [...base, "Deployment/crd-backup", "Service/crd-backup-metrics"].sort(),
    );
    expect(await kinds(VALUE_SETS["standby"]!)).toEqual(
      [
        ...base,
        "ClusterRole/crd-backup-standby",
        "ClusterRoleBinding/crd-backup-standby",
        "CronJob/crd-backup",
        "Deployment/crd-backup-standby",
        "Role/crd-backup-standby",
        "RoleBinding/crd-backup-standby",
        "Service/crd-backup-standby-metrics",
        "ServiceAccount/crd-backup-standby",
      ].sort(),
    );
    // the chart never creates a Secret: credentials and the drill's kubeconfig are made out of band
    for (const values of Object.values(VALUE_SETS)) expect(find(await render(values), "Secret")).toEqual([]);
  });

  it("the defaults render what deploy/'s kustomize manifests hold (the Namespace and the example Secret aside)", async () => {
    const kustomization = readDeploy("kustomization.yaml")[0]! as { resources: string[] };
    const kustomized = kustomization.resources.flatMap(readDeploy);
    // the values that say what the kustomization holds: kustomize's workloads take its optional
    // example Secret (in the chart a Secret is named or absent), and the recorder when it lists it
    const recorder = find(kustomized, "Deployment", "crd-backup-recorder").length > 0;
    const chart = await render({
      credentials: { existingSecret: "crd-backup-s3" },
      recorder: { enabled: recorder },
    });
    const onlyInKustomize = kustomized.filter(
      (k) => find(chart, k["kind"], k["metadata"]["name"]).length === 0,
    );
    expect(onlyInKustomize.map((m) => m["kind"]).sort()).toEqual(["Namespace", "Secret"]);
    // the chart adds only the Service its ServiceMonitor scrapes the recorder through
    const onlyInChart = chart.filter((c) => find(kustomized, c["kind"], c["metadata"]["name"]).length === 0);
    expect(onlyInChart.map((m) => `${m["kind"]}/${m["metadata"]["name"]}`)).toEqual(
      recorder ? ["Service/crd-backup-recorder-metrics"] : [],
    );

    // the pod's labels and a Deployment's selector carry the chart's instance label; an optional
    // Secret reference is the chart's named one
    const normalized = (spec: Manifest) => {
      const copy = structuredClone(spec);
      const template = copy["jobTemplate"]?.["spec"]["template"] ?? copy["template"];
      delete template["metadata"];
      delete copy["selector"];
      for (const c of template["spec"]["containers"])
        for (const e of c["envFrom"]) delete e["secretRef"]?.["optional"];
      return copy;
    };
    for (const k of kustomized) {
      const [c] = find(chart, k["kind"], k["metadata"]["name"]);
      if (!c) continue;
      const what = `${k["kind"]} ${k["metadata"]["name"]}`;
      // kustomize's common labels are among the chart's
      expect(c["metadata"]["labels"], what).toMatchObject({ "app.kubernetes.io/name": "crd-backup" });
      expect(c["metadata"]["annotations"], what).toEqual(k["metadata"]["annotations"]);
      for (const field of ["data", "stringData", "rules", "roleRef", "subjects"])
        expect(c[field], `${what} ${field}`).toEqual(k[field]);
      if (k["spec"]) expect(normalized(c["spec"]), what).toEqual(normalized(k["spec"]));
    }

    // and the drill example (outside the kustomization) is the chart's drill
    const [drill] = readDeploy("drill-cronjob.yaml");
    const chartDrill = find(
      await render({
        credentials: { existingSecret: "crd-backup-s3" },
        drill: {
          enabled: true,
          targetKubeconfigSecret: { name: "crd-backup-drill-target", key: "kubeconfig" },
        },
      }),
      "CronJob",
      "crd-backup-drill",
    )[0]!;
    expect(normalized(chartDrill["spec"])).toEqual(normalized(drill!["spec"]));
    const labels = (m: Manifest) => m["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"];
    expect(labels(chartDrill)).toMatchObject(labels(drill!));
  });

  it("a signing key goes to the pods that write (snapshot, schedule, recorder) only when named, never to the drill", async () => {
    const pods = (objects: Manifest[]) => new Map(podSpecs(objects).map(([name, t]) => [name, t["spec"]]));
    for (const values of [{}, VALUE_SETS["drill"]!, VALUE_SETS["recorder"]!, VALUE_SETS["schedule"]!])
      expect(JSON.stringify(await render(values))).not.toMatch(/sign/);
    const signed = pods(await render(VALUE_SETS["signing"]!));
    const scheduled = pods(await render({ ...VALUE_SETS["signing"]!, snapshot: { mode: "schedule" } }));
    const volume = {
      name: "signing-key",
      secret: { secretName: "crd-backup-signing", defaultMode: 0o440 },
    };
    const mount = { name: "signing-key", mountPath: "/etc/crd-backup/signing", readOnly: true };
    for (const pod of [
      signed.get("crd-backup")!,
      signed.get("crd-backup-recorder")!,
      scheduled.get("crd-backup")!,
    ]) {
      expect(pod["containers"][0]["args"]).toContain("--sign-key=/etc/crd-backup/signing/id_ed25519");
      expect(pod["volumes"]).toContainEqual(volume);
      expect(pod["containers"][0]["volumeMounts"]).toContainEqual(mount);
      // 0440 files, readable by the pod's group only
      expect(pod["securityContext"]["fsGroup"]).toBe(65532);
    }
    // the drill reads: it gets the public allowed_signers, never the key
    const drill = signed.get("crd-backup-drill")!;
    expect(JSON.stringify(drill)).not.toMatch(/sign-key|signing-key|crd-backup-signing/);
    expect(drill["containers"][0]["args"]).toContain(
      "--trusted-signers=/etc/crd-backup/trusted-signers/allowed_signers",
    );
    expect(drill["volumes"]).toContainEqual({
      name: "trusted-signers",
      configMap: { name: "crd-backup-signers" },
    });
  });

  it("each value set lands where it should, and every pod keeps the restricted security posture", async () => {
    const envFrom = (objects: Manifest[]) => podSpecs(objects)[0]![1]["spec"]["containers"][0]["envFrom"];
    expect(envFrom(await render(VALUE_SETS["existingSecret"]!))).toEqual([
      { configMapRef: { name: "crd-backup" } },
      { secretRef: { name: "crd-backup-s3" } },
    ]);
    // IRSA: the ServiceAccount carries the role, no Secret is referenced
    const irsa = await render(VALUE_SETS["irsa"]!);
    expect(find(irsa, "ServiceAccount")[0]!["metadata"]["annotations"]).toEqual({
      "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/crd-backup",
    });
    expect(envFrom(irsa)).toEqual([{ configMapRef: { name: "crd-backup" } }]);

    // the drill gets no token for this cluster and reads the scratch cluster's kubeconfig
    const drill = find(await render(VALUE_SETS["drill"]!), "CronJob", "crd-backup-drill")[0]!;
    const drillPod = drill["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    expect(drillPod["automountServiceAccountToken"]).toBe(false);
    expect(drillPod["containers"][0]["args"]).toEqual(
      expect.arrayContaining([
        "drill",
        "latest",
        "--target-kubeconfig=/etc/crd-backup/drill-target/config",
        "--target-context=dr",
      ]),
    );
    expect(drillPod["volumes"]).toContainEqual({
      name: "target",
      secret: { secretName: "scratch", defaultMode: 0o440 },
    });
    // an encrypted snapshot's identity goes to the drill's pod, and only there
    expect(drillPod["containers"][0]["args"]).toContain("--identity=/etc/crd-backup/drill-identity/key.txt");
    expect(drillPod["volumes"]).toContainEqual({
      name: "identity",
      secret: { secretName: "drill-identity", defaultMode: 0o440 },
    });
    const snapshotPod = find(await render(VALUE_SETS["drill"]!), "CronJob", "crd-backup")[0]!;
    expect(JSON.stringify(snapshotPod)).not.toMatch(/identity/);

    const recorder = await render(VALUE_SETS["recorder"]!);
    const rec = find(recorder, "Deployment", "crd-backup-recorder")[0]!;
    expect(rec["spec"]["replicas"]).toBe(1);
    expect(rec["spec"]["template"]["spec"]["serviceAccountName"]).toBe("crd-backup-recorder");
    expect(rec["spec"]["template"]["spec"]["containers"][0]["args"]).toEqual([
      "record",
      "--flush-interval=30s",
      "--base-interval=24h",
      "--spool-dir=/var/lib/crd-backup/spool",
      "--spool-size=1Gi",
      "--metrics-addr=:9464",
    ]);
    expect(find(recorder, "ClusterRoleBinding", "crd-backup-record")[0]!["subjects"]).toEqual([
      { kind: "ServiceAccount", name: "crd-backup-recorder", namespace: "crd-backup" },
    ]);
    // offline, no group is known: list and watch CRDs and namespaces, get namespaces (kube-system
    // identifies the cluster), and no resource
    expect(rulesOf(recorder, "crd-backup-record")).toEqual(RECORD_BASE);

    // recipients come from a ConfigMap or Secret key, as the env var the CLI reads
    const env = podSpecs(await render(VALUE_SETS["recipients"]!))[0]![1]["spec"]["containers"][0]["env"];
    expect(env).toContainEqual({
      name: "CRD_BACKUP_ENCRYPT_TO",
      valueFrom: { configMapKeyRef: { name: "crd-backup-recipients", key: "recipients" } },
    });
    const secretEnv = podSpecs(
      await render({ encryption: { recipientsSecret: { name: "r", key: "k" } } }),
    )[0]![1]["spec"]["containers"][0]["env"];
    expect(secretEnv).toContainEqual({
      name: "CRD_BACKUP_ENCRYPT_TO",
      valueFrom: { secretKeyRef: { name: "r", key: "k" } },
    });

    const placement = await render({
      ...VALUE_SETS["placement"]!,
      drill: { enabled: true, targetKubeconfigSecret: { name: "scratch", key: "config" } },
    });
    const snapshotArgs = find(placement, "CronJob", "crd-backup")[0]!["spec"]["jobTemplate"]["spec"][
      "template"
    ]["spec"]["containers"][0]["args"];
    expect(snapshotArgs).toEqual(
      expect.arrayContaining([
        "--include-groups=cert-manager.io",
        "--include-groups=*.example.com",
        "--exclude-namespaces=kube-*",
        "--selector=backup!=no",
      ]),
    );
    for (const [name, template] of podSpecs(placement)) {
      expect(template["metadata"]["labels"], name).toMatchObject({ team: "platform" });
      expect(template["spec"], name).toMatchObject({
        nodeSelector: { "kubernetes.io/os": "linux" },
        tolerations: [{ key: "backup", operator: "Exists", effect: "NoSchedule" }],
        priorityClassName: "system-cluster-critical",
      });
    }

    // every pod of every value set: non-root, read-only root, no privilege escalation, no capabilities
    for (const [set, values] of Object.entries(VALUE_SETS)) {
      for (const [name, template] of podSpecs(await render(values))) {
        const spec = template["spec"];
        expect(spec["securityContext"], `${set} ${name}`).toMatchObject({
          runAsNonRoot: true,
          runAsUser: 65532,
          seccompProfile: { type: "RuntimeDefault" },
        });
        for (const c of spec["containers"]) {
          expect(c["securityContext"], `${set} ${name}`).toEqual({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          });
          expect(c["env"], `${set} ${name}`).toContainEqual({ name: "TMPDIR", value: "/tmp" });
        }
        // a token only where the pod talks to this cluster's API
        expect(spec["automountServiceAccountToken"], `${set} ${name}`).toBe(!name.endsWith("-drill"));
      }
    }
  });

  it("the default roles read no built-in resource; rbac.groups adds its groups' resources; rbac.allGroups is the old wide form", async () => {
    // offline (helm template, helm lint, Argo CD): lookup finds no CRD, so only CRDs and namespaces
    const offline = await render({ recorder: { enabled: true } });
    expect(rulesOf(offline, "crd-backup-read")).toEqual(READ_BASE);
    expect(rulesOf(offline, "crd-backup-record")).toEqual(RECORD_BASE);
    for (const role of find(offline, "ClusterRole"))
      for (const rule of role["rules"] as Manifest[]) {
        expect(rule["apiGroups"]).not.toContain("*");
        expect(rule["resources"]).not.toContain("*");
      }

    // rbac.groups: every resource of those groups (a CRD added to one later is covered), nothing else
    const groups = await render(VALUE_SETS["groups"]!);
    const listed = ["cert-manager.io", "monitoring.coreos.com"];
    expect(rulesOf(groups, "crd-backup-read")).toEqual([
      ...READ_BASE,
      { apiGroups: listed, resources: ["*"], verbs: ["get", "list"] },
    ]);
    expect(rulesOf(groups, "crd-backup-record")).toEqual([
      ...RECORD_BASE,
      { apiGroups: listed, resources: ["*"], verbs: ["list", "watch"] },
    ]);

    // the opt-in: every resource of every group, Secrets included
    const wide = await render(VALUE_SETS["allGroups"]!);
    expect(rulesOf(wide, "crd-backup-read")).toEqual([
      ...READ_BASE,
      { apiGroups: ["*"], resources: ["*"], verbs: ["get", "list"] },
    ]);
    expect(rulesOf(wide, "crd-backup-record")).toEqual([
      ...RECORD_BASE,
      { apiGroups: ["*"], resources: ["*"], verbs: ["list", "watch"] },
    ]);
  });

  it("an age identity in the cluster (drill.identitySecret) is refused while a role the chart binds can read Secrets", async () => {
    const secretReader = (kind: string, verbs: string[]) =>
      JSON.stringify({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: kind },
        rules: [...READ_BASE, { apiGroups: [""], resources: ["secrets"], verbs }],
      });
    const refused: [object, RegExp][] = [
      [
        { rbac: { allGroups: true }, drill: DRILL_IDENTITY },
        /drill\.identitySecret: the ClusterRole crd-backup-read can read Secrets \(rbac\.allGroups.*the age identity in drill-identity.*decrypt every snapshot.*leave rbac\.allGroups false/,
      ],
      [
        { rbac: { snapshotRole: secretReader("crd-backup-read", ["get"]) }, drill: DRILL_IDENTITY },
        /drill\.identitySecret: the ClusterRole crd-backup-read can read Secrets \(rbac\.allGroups, or an rbac\.snapshotRole/,
      ],
      [
        {
          rbac: { recorderRole: secretReader("crd-backup-record", ["list", "watch"]) },
          recorder: { enabled: true },
          drill: DRILL_IDENTITY,
        },
        /drill\.identitySecret: the ClusterRole crd-backup-record can read Secrets \(rbac\.allGroups, or an rbac\.recorderRole/,
      ],
    ];
    for (const [values, message] of refused) {
      const res = await helmTemplate({ values });
      expect(res.code, JSON.stringify(values)).not.toBe(0);
      expect(res.stderr, JSON.stringify(values)).toMatch(message);
      expect(res.stdout).toBe("");
    }
    // the wide roles alone render (an opt-in, its cost in values.yaml), and the identity renders
    // with roles that cannot read it: the default ones, and rbac.groups
    expect((await helmTemplate({ values: { rbac: { allGroups: true } } })).code).toBe(0);
    for (const values of [{}, { rbac: { groups: ["cert-manager.io"] } }]) {
      const objects = await render({ ...values, recorder: { enabled: true }, drill: DRILL_IDENTITY });
      expect(find(objects, "CronJob", "crd-backup-drill")).toHaveLength(1);
    }
  });

  it("bad values fail at install with a message naming the value", async () => {
    const refused: [object, RegExp][] = [
      [
        { storage: { location: "gs://bucket/prefix" } },
        /at '\/storage\/location': 'gs:\/\/bucket\/prefix' does not match/,
      ],
      [{ snapshot: { mode: "Daemon" } }, /at '\/snapshot\/mode': value must be one of 'CronJob', 'schedule'/],
      [
        { snapshot: { retention: { keepDaily: 0 } } },
        /at '\/snapshot\/retention\/keepDaily': minimum: got 0, want 1/,
      ],
      [{ snapshot: { schedule: "every day" } }, /at '\/snapshot\/schedule': 'every day' does not match/],
      [{ storgae: { location: "s3://b/p" } }, /additional properties 'storgae' not allowed/],
      [
        { monitoring: { enabled: "yes" } },
        /at '\/monitoring\/enabled': value must be one of 'auto', true, false/,
      ],
      [
        { snapshot: { resources: { limits: { memory: "lots" } } } },
        /at '\/snapshot\/resources\/limits\/memory'/,
      ],
      [
        { drill: { enabled: true } },
        /drill\.targetKubeconfigSecret\.name: the Secret holding the scratch cluster's kubeconfig/,
      ],
      [{ drill: { snapshot: "yesterday" } }, /at '\/drill\/snapshot': 'yesterday' does not match/],
      [
        { rbac: { snapshotRole: "kind: Role\nrules: []" } },
        /rbac\.snapshotRole: not a ClusterRole with rules/,
      ],
      // "*" is rbac.allGroups, and "" the core group (Secrets): never a CRD's group
      [{ rbac: { groups: ["*"] } }, /at '\/rbac\/groups\/0': '\*' does not match/],
      [{ rbac: { groups: [""] } }, /at '\/rbac\/groups\/0': '' does not match/],
      [{ rbac: { groups: ["apps"] } }, /at '\/rbac\/groups\/0': 'apps' does not match/],
      [
        { rbac: { allGroups: true, groups: ["cert-manager.io"] } },
        /rbac\.allGroups and rbac\.groups: give one/,
      ],
      [
        {
          encryption: {
            recipientsConfigMap: { name: "a", key: "k" },
            recipientsSecret: { name: "b", key: "k" },
          },
        },
        /encryption: give recipientsConfigMap or recipientsSecret, not both/,
      ],
    ];
    for (const [values, message] of refused) {
      const res = await helmTemplate({ values });
      expect(res.code, JSON.stringify(values)).not.toBe(0);
      expect(res.stderr, JSON.stringify(values)).toMatch(message);
      expect(res.stdout).toBe("");
    }
  });

  it("installs the ServiceMonitor and the PrometheusRule when the cluster serves monitoring.coreos.com/v1, or when asked", async () => {
    const operator = ["monitoring.coreos.com/v1"];
    const names = (objects: Manifest[]) =>
      objects
        .filter((m) => m["apiVersion"] === "monitoring.coreos.com/v1")
        .map((m) => m["kind"])
        .sort();
    const schedule = VALUE_SETS["schedule"]!;
    expect(names(await render(schedule, { apiVersions: operator }))).toEqual([
      "PrometheusRule",
      "ServiceMonitor",
    ]);
    expect(names(await render(schedule))).toEqual([]); // no Operator: nothing that would not apply
    expect(
      names(await render({ ...schedule, monitoring: { enabled: false } }, { apiVersions: operator })),
    ).toEqual([]);
    expect(names(await render({ ...schedule, monitoring: { enabled: true } }))).toEqual([
      "PrometheusRule",
      "ServiceMonitor",
    ]);
    // a CronJob's pod is gone before a scrape: without a pod serving /metrics, only the rules
    expect(names(await render({}, { apiVersions: operator }))).toEqual(["PrometheusRule"]);

    const objects = await render(
      {
        ...schedule,
        recorder: { enabled: true },
        monitoring: { cluster: "prod-eu", serviceMonitor: { labels: { release: "kps" } } },
      },
      { apiVersions: operator },
    );
    const [sm] = find(objects, "ServiceMonitor");
    expect(sm!["metadata"]["labels"]).toMatchObject({ release: "kps" });
    expect(sm!["spec"]["endpoints"]).toEqual([
      {
        port: "metrics",
        path: "/metrics",
        interval: "60s",
        relabelings: [{ targetLabel: "cluster", replacement: "prod-eu" }],
      },
    ]);
    // it selects exactly the Services of the pods that serve /metrics, whose port it names
    const services = find(objects, "Service");
    expect(services.map((s) => s["metadata"]["name"]).sort()).toEqual([
      "crd-backup-metrics",
      "crd-backup-recorder-metrics",
    ]);
    for (const s of services) {
      expect(s["metadata"]["labels"]).toMatchObject(sm!["spec"]["selector"]["matchLabels"]);
      expect(s["spec"]["ports"]).toEqual([{ name: "metrics", port: 9464, targetPort: "metrics" }]);
      const pods = find(objects, "Deployment").filter((d) =>
        Object.entries(s["spec"]["selector"] as Record<string, string>).every(
          ([k, v]) => d["spec"]["template"]["metadata"]["labels"][k] === v,
        ),
      );
      expect(pods.length, s["metadata"]["name"]).toBe(1);
      expect(pods[0]!["spec"]["template"]["spec"]["containers"][0]["ports"]).toEqual([
        { name: "metrics", containerPort: 9464 },
      ]);
    }
  });
});

describe("the Helm chart on the real API server", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("helm")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("helm-a")],
      widgetsPerNamespace: 3,
    });
  });
  afterAll(() => admin.close());

  /** A fresh namespace that enforces the restricted Pod Security Standard, as deploy/namespace.yaml does. */
  async function restrictedNamespace(prefix: string): Promise<string> {
    const name = uniqueName(prefix);
    const [ns] = readDeploy("namespace.yaml");
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name, labels: ns!["metadata"]["labels"] },
      }),
    });
    return name;
  }

  /** The Pod a CronJob or Deployment would start, for Pod Security admission to judge. */
  const podOf = (name: string, template: Manifest, namespace: string): Manifest => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `${name}-pod`, namespace, labels: template["metadata"]["labels"] },
    spec: template["spec"],
  });

  it("every value set's manifests and pods pass a server-side dry run (strict fields, restricted Pod Security)", async () => {
    const namespace = await restrictedNamespace("helm-dry");
    // the pods' ServiceAccounts must exist for the pod dry runs (the ServiceAccount admission plugin)
    const created = new Set<string>();
    let snapshotPod: Manifest | undefined;
    for (const [set, values] of Object.entries(VALUE_SETS)) {
      const release = uniqueName("crd-backup");
      const objects = await render(values, { release, namespace });
      for (const m of objects) {
        const applied = await serverSideApply(admin, m, { dryRun: true }).catch((e: unknown) => e);
        expect(applied, `${set}: ${m["kind"]} ${(applied as Error).message}`).not.toBeInstanceOf(Error);
        expect((applied as Manifest)["metadata"]["name"]).toBe(m["metadata"]["name"]);
        if (m["kind"] === "ServiceAccount" && !created.has(m["metadata"]["name"])) {
          await serverSideApply(admin, m, { dryRun: false });
          created.add(m["metadata"]["name"]);
        }
      }
      for (const [name, template] of podSpecs(objects)) {
        snapshotPod ??= podOf(name, template, namespace);
        const pod = await serverSideApply(admin, podOf(name, template, namespace), { dryRun: true }).catch(
          (e: unknown) => e,
        );
        expect(pod, `${set}: pod of ${name}: ${(pod as Error).message}`).not.toBeInstanceOf(Error);
      }
    }
    // the check has teeth: the snapshot's pod as root is refused by the namespace's Pod Security level
    const root = structuredClone(snapshotPod!);
    root["metadata"]["name"] = "crd-backup-as-root";
    root["spec"]["securityContext"] = {
      ...root["spec"]["securityContext"],
      runAsNonRoot: false,
      runAsUser: 0,
    };
    const err = await serverSideApply(admin, root, { dryRun: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).message).toMatch(/violates PodSecurity "restricted/);
  });

  const tokenKubeconfig = (namespace: string, sa: string) => saKubeconfig(admin, namespace, sa);

  /**
   * Installs the chart for real (rendered against the cluster, so its CRD groups are looked up as at
   * `helm install`; then server-side apply) and returns a kubeconfig holding its ServiceAccount's token.
   */
  async function install(values: object, setFiles?: Record<string, string>) {
    const namespace = await restrictedNamespace("helm-inst");
    const release = uniqueName("crd-backup");
    const env = testEnv();
    const prefix = uniqueName("helm");
    const objects = (
      await helmTemplate({
        release,
        namespace,
        setFiles,
        kubeconfig: env.kubeconfig,
        values: {
          ...values,
          storage: {
            location: `s3://${env.s3.bucket}/${prefix}`,
            region: env.s3.region,
            endpoint: env.s3.endpoint,
          },
          credentials: { existingSecret: `${release}-s3` },
          filters: { includeGroups: [fx.group] },
        },
      })
    ).objects;
    expect(objects.length).toBeGreaterThan(0);
    // the credentials Secret a user creates out of band
    await serverSideApply(
      admin,
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${release}-s3`, namespace },
        stringData: { AWS_ACCESS_KEY_ID: env.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey },
      },
      { dryRun: false },
    );
    for (const m of objects) await serverSideApply(admin, m, { dryRun: false });
    const cronJob = find(objects, "CronJob", release)[0]!;
    const container = cronJob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    const sa = cronJob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"];
    // the stored objects are the rendered ones: the CronJob, its ServiceAccount and the role's binding
    const stored = JSON.parse(
      (await admin.request({ path: `/apis/batch/v1/namespaces/${namespace}/cronjobs/${release}` })).text,
    ) as Manifest;
    expect(stored["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]).toEqual(
      container["args"],
    );
    const kubeconfig = await tokenKubeconfig(namespace, sa);
    return { namespace, release, objects, cronJob, container, kubeconfig };
  }

  /**
   * Runs the CronJob's container as its pod would: its args, the ConfigMap and the Secret as
   * environment (envFrom), its env, and the ServiceAccount's token for the cluster.
   */
  async function runContainer(inst: Awaited<ReturnType<typeof install>>) {
    const env: Record<string, string> = { KUBECONFIG: inst.kubeconfig };
    for (const from of inst.container["envFrom"]) {
      const ref = from["configMapRef"] ?? from["secretRef"];
      const kind = from["configMapRef"] ? "configmaps" : "secrets";
      const obj = JSON.parse(
        (await admin.request({ path: `/api/v1/namespaces/${inst.namespace}/${kind}/${ref["name"]}` })).text,
      ) as Manifest;
      for (const [k, v] of Object.entries(obj["data"] as Record<string, string>))
        env[k] = kind === "secrets" ? Buffer.from(v, "base64").toString() : v;
    }
    for (const e of inst.container["env"] as Manifest[]) {
      const ref = e["valueFrom"]?.["configMapKeyRef"] ?? e["valueFrom"]?.["secretKeyRef"];
      if (!ref) {
        if (e["name"] !== "TMPDIR") env[e["name"]] = e["value"]; // TMPDIR: /tmp is the pod's emptyDir
        continue;
      }
      const kind = e["valueFrom"]["configMapKeyRef"] ? "configmaps" : "secrets";
      const obj = JSON.parse(
        (await admin.request({ path: `/api/v1/namespaces/${inst.namespace}/${kind}/${ref["name"]}` })).text,
      ) as Manifest;
      const v = String(obj["data"][ref["key"]]);
      env[e["name"]] = kind === "secrets" ? Buffer.from(v, "base64").toString() : v;
    }
    const metrics = mkdtempSync(path.join(os.tmpdir(), "crd-backup-helm-metrics-"));
    const args = (inst.container["args"] as string[]).map((a) =>
      a.startsWith("--metrics-file=") ? `--metrics-file=${path.join(metrics, "crd-backup.prom")}` : a,
    );
    const res = await runCli([...args, "-o", "json"], { env });
    return { ...res, metricsFile: path.join(metrics, "crd-backup.prom") };
  }

  it("applied into a fresh namespace, the snapshot runs with the chart's ServiceAccount token and its default role, which reads no Secret", async () => {
    const inst = await install({});
    // the default role: the groups of the cluster's CRDs that the filters select, looked up
    expect(rulesOf(inst.objects, `${inst.release}-read`)).toEqual([
      ...READ_BASE,
      { apiGroups: [fx.group], resources: ["*"], verbs: ["get", "list"] },
    ]);
    const res = await runContainer(inst);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { status: string; counts: { objects: number; crds: number } };
    expect(out.status).toBe("complete");
    expect(out.counts.crds).toBe(3);
    expect(out.counts.objects).toBe(fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies);
    // the chart's --metrics-file was written
    expect(readFileSync(res.metricsFile, "utf8")).toMatch(/^crd_backup_snapshot_last_run_success 1$/m);
    // and that identity cannot write, nor read a Secret, even the S3 credentials in its own
    // namespace: RBAC is the chart's read-only role, not the admin's
    const client = await clientFor(inst.kubeconfig);
    try {
      const refused: [string, string, string?][] = [
        [
          "POST",
          `/api/v1/namespaces/${inst.namespace}/configmaps`,
          JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "nope" } }),
        ],
        ["GET", `/api/v1/namespaces/${inst.namespace}/secrets/${inst.release}-s3`],
        ["GET", `/api/v1/namespaces/${inst.namespace}/secrets`],
        ["GET", "/api/v1/secrets"],
        ["GET", "/api/v1/configmaps"],
      ];
      for (const [method, p, body] of refused) {
        const err = await client
          .request({ method: method as "GET" | "POST", path: p, ...(body ? { body } : {}) })
          .catch((e: unknown) => e);
        expect((err as KubeApiError).status, `${method} ${p}`).toBe(403);
      }
    } finally {
      client.close();
    }
    const sa = inst.cronJob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"];
    const who = serviceAccountUser(inst.namespace, sa);
    expect(
      await allowedOf(admin, who, [...secretReads(inst.namespace, `${inst.release}-s3`), ...BUILT_IN_READS]),
    ).toEqual([]);
  });

  it("the ClusterRole is exactly what `crd-backup rbac` prints, and a snapshot succeeds with only that role", async () => {
    const rbac = await runCli(["rbac", "--include-groups", fx.group]);
    expect(rbac.code, rbac.stderr).toBe(0);
    const json = await runCli(["rbac", "--include-groups", fx.group, "-o", "json"]);
    const printed = JSON.parse(json.stdout) as ClusterRole;
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-helm-rbac-"));
    // YAML (with its comment line) and JSON are both taken as printed
    for (const [form, text] of [
      ["yaml", rbac.stdout],
      ["json", json.stdout],
    ] as const) {
      writeFileSync(path.join(dir, `role.${form}`), text);
      const objects = await render({}, { setFiles: { "rbac.snapshotRole": path.join(dir, `role.${form}`) } });
      const [role] = find(objects, "ClusterRole");
      expect(role!["rules"], form).toEqual(printed.rules);
      expect(role!["metadata"]["name"]).toBe(printed.metadata.name);
      expect(role!["metadata"]["labels"]).toMatchObject(printed.metadata.labels);
    }

    // the recorder's role: what `crd-backup rbac --record` prints
    const record = await runCli(["rbac", "--record", "--include-groups", fx.group]);
    expect(record.code, record.stderr).toBe(0);
    writeFileSync(path.join(dir, "record.yaml"), record.stdout);
    const recordRole = find(
      await render(
        { recorder: { enabled: true } },
        { setFiles: { "rbac.recorderRole": path.join(dir, "record.yaml") } },
      ),
      "ClusterRole",
      "crd-backup-record",
    )[0]!;
    const printedRecord = parseYaml(record.stdout) as ClusterRole;
    expect(recordRole["rules"]).toEqual(printedRecord.rules);
    expect(recordRole["metadata"]["name"]).toBe(printedRecord.metadata.name);
    expect(recordRole["rules"]).not.toEqual(printed.rules); // list and watch, not get and list

    const inst = await install({}, { "rbac.snapshotRole": path.join(dir, "role.yaml") });
    const stored = JSON.parse(
      (
        await admin.request({
          path: `/apis/rbac.authorization.k8s.io/v1/clusterroles/${inst.release}-read`,
        })
      ).text,
    ) as ClusterRole;
    expect(stored.rules).toEqual(printed.rules);
    const res = await runContainer(inst);
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { status: string }).status).toBe("complete");
  });

  it("the recorder runs as its own ServiceAccount with the chart's role for it, and serves /metrics", async () => {
    const inst = await install({ recorder: { enabled: true, flushInterval: "1s" } });
    const deployment = find(inst.objects, "Deployment", `${inst.release}-recorder`)[0]!;
    const pod = deployment["spec"]["template"]["spec"];
    expect(pod["serviceAccountName"]).toBe(`${inst.release}-recorder`);
    expect(rulesOf(inst.objects, `${inst.release}-record`)).toEqual([
      ...RECORD_BASE,
      { apiGroups: [fx.group], resources: ["*"], verbs: ["list", "watch"] },
    ]);
    const kubeconfig = await tokenKubeconfig(inst.namespace, pod["serviceAccountName"]);
    const env: Record<string, string> = { KUBECONFIG: kubeconfig };
    const configMap = find(inst.objects, "ConfigMap")[0]!;
    Object.assign(env, configMap["data"]);
    const args = (pod["containers"][0]["args"] as string[])
      .slice(1)
      .map((a) =>
        a.startsWith("--spool-dir=")
          ? `--spool-dir=${spoolDir()}`
          : a.startsWith("--metrics-addr=")
            ? "--metrics-addr=127.0.0.1:0"
            : a,
      );
    const rec = startRecorder(args, env);
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      // a change, which the next flush (1 s) stores as a segment
      await admin.request({
        method: "PATCH",
        path: `/apis/${fx.group}/v1/namespaces/${fx.namespaces[0]}/widgets/widget-0000`,
        body: JSON.stringify({ metadata: { labels: { recorded: "yes" } } }),
        contentType: "application/merge-patch+json",
      });
      let metrics = "";
      for (let i = 0; i < 60 && !/^crd_backup_journal_segments_total [1-9]/m.test(metrics); i++) {
        await sleep(500);
        metrics = await rec.metrics();
      }
      expect(metrics).toMatch(/^crd_backup_journal_segments_total [1-9]/m);
      expect(metrics).toMatch(/^crd_backup_journal_gaps_total 0$/m);
    } finally {
      rec.child.kill("SIGTERM");
    }
    const exit = await rec.exited;
    expect(exit.code, rec.log()).toBe(0);
    expect(rec.log()).not.toMatch(/Forbidden/);
    // and it can list and watch no Secret
    const who = serviceAccountUser(inst.namespace, pod["serviceAccountName"]);
    expect(
      await allowedOf(admin, who, [...secretReads(inst.namespace, `${inst.release}-s3`), ...BUILT_IN_READS]),
    ).toEqual([]);
  });

  it("helm install and upgrade look up the cluster's CRD groups (filtered as a snapshot is); the roles never read a Secret, unless rbac.allGroups", async () => {
    const env = testEnv();
    const namespace = await restrictedNamespace("helm-lookup");
    const release = uniqueName("crd-backup");
    // the filters select fx's group (a glob); a group whose only resource is excluded has no rule
    const skipped = `${uniqueName("helm-skip")}.fixtures.crd-backup.io`;
    await makeCrd(admin, skipped, "widgets", "Widget");
    const values = {
      recorder: { enabled: true },
      filters: {
        includeGroups: ["helm-*.fixtures.crd-backup.io"],
        excludeResources: ["widgets.helm-skip-*"],
      },
    };
    const run = async (verb: "install" | "upgrade", extra: object = {}) =>
      helm([
        verb,
        release,
        CHART,
        "--namespace",
        namespace,
        "--values",
        valuesFile({ ...values, ...extra }),
        "--kubeconfig",
        env.kubeconfig,
      ]);
    const groupsOf = async (role: string) => {
      const stored = JSON.parse(
        (await admin.request({ path: `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}` })).text,
      ) as ClusterRole;
      expect(stored.rules.slice(0, 2)).toEqual(role.endsWith("-read") ? READ_BASE : RECORD_BASE);
      expect(stored.rules.length).toBeLessThanOrEqual(3);
      const [rule] = stored.rules.slice(2);
      if (rule) expect(rule.resources).toEqual(["*"]);
      return rule?.apiGroups ?? [];
    };
    const reader = serviceAccountUser(namespace, release);
    const recorder = serviceAccountUser(namespace, `${release}-recorder`);
    const reads = (group: string, verb: string): Access => ({ verb, resource: "widgets", group });
    const installed = await run("install");
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toMatch(/The ClusterRoles read the custom resources of \d+ API groups \(.*/);
    try {
      for (const role of [`${release}-read`, `${release}-record`]) {
        const groups = await groupsOf(role);
        expect(groups, role).toContain(fx.group);
        expect(groups, role).not.toContain(skipped);
        for (const g of groups) expect(g, role).toMatch(/^helm-.*\.fixtures\.crd-backup\.io$/);
      }
      await waitAllowed(admin, reader, [reads(fx.group, "list")]);
      await waitAllowed(admin, recorder, [reads(fx.group, "watch")]);
      const noSecrets = [...secretReads(namespace), ...BUILT_IN_READS];
      expect(await allowedOf(admin, reader, noSecrets)).toEqual([]);
      expect(await allowedOf(admin, recorder, noSecrets)).toEqual([]);

      // a CRD in a new group: read after the next upgrade, which looks the groups up again
      const later = `${uniqueName("helm-later")}.fixtures.crd-backup.io`;
      await makeCrd(admin, later, "widgets", "Widget");
      expect(await groupsOf(`${release}-read`)).not.toContain(later);
      const upgraded = await run("upgrade");
      expect(upgraded.code, upgraded.stderr).toBe(0);
      expect(await groupsOf(`${release}-read`)).toContain(later);
      expect(await groupsOf(`${release}-record`)).toContain(later);
      await waitAllowed(admin, reader, [reads(later, "list")]);
      expect(await allowedOf(admin, reader, noSecrets)).toEqual([]);

      // the opt-in wide form: every Secret becomes readable (the check above has teeth), and an
      // in-cluster identity is then refused by the real helm too
      const identity = { drill: DRILL_IDENTITY };
      const refused = await run("upgrade", { rbac: { allGroups: true }, ...identity });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/drill\.identitySecret: the ClusterRole \S+-read can read Secrets/);
      const wide = await run("upgrade", { rbac: { allGroups: true } });
      expect(wide.code, wide.stderr).toBe(0);
      await waitAllowed(
        admin,
        reader,
        secretReads(namespace).filter((a) => a.verb !== "watch"),
      );
      await waitAllowed(admin, recorder, [{ verb: "watch", resource: "secrets" }]);
    } finally {
      await helm(["uninstall", release, "--namespace", namespace, "--kubeconfig", env.kubeconfig]);
    }
  });

  it("with recipients from a ConfigMap, the chart's snapshot is encrypted to them, and only their identity opens it", async () => {
    const keys = mkdtempSync(path.join(os.tmpdir(), "crd-backup-helm-keys-"));
    const identities = [path.join(keys, "a.key"), path.join(keys, "b.key")];
    const recipients: string[] = [];
    for (const file of identities) {
      const res = await runCli(["keygen", "-o", file]);
      expect(res.code, res.stderr).toBe(0);
      recipients.push(res.stdout.trim());
    }
    expect(recipients.every((r) => r.startsWith("age1"))).toBe(true);
    const inst = await install({
      encryption: { recipientsConfigMap: { name: "backup-recipients", key: "recipients" } },
    });
    // the ConfigMap the user keeps the public keys in, one a line
    await serverSideApply(
      admin,
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "backup-recipients", namespace: inst.namespace },
        data: { recipients: recipients.join("\n") + "\n" },
      },
      { dryRun: false },
    );
    const res = await runContainer(inst);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { id: string; status: string };
    expect(out.status).toBe("complete");

    const storage = find(inst.objects, "ConfigMap")[0]!["data"]["CRD_BACKUP_STORAGE"] as string;
    const locked = await runCli(["verify", out.id, "--storage", storage, "-o", "json"]);
    expect(locked.code, locked.stderr).toBe(0);
    expect(JSON.parse(locked.stdout)).toMatchObject({ encrypted: true, contentChecked: false });
    for (const identity of identities) {
      const open = await runCli([
        "verify",
        out.id,
        "--storage",
        storage,
        "--identity",
        identity,
        "-o",
        "json",
      ]);
      expect(open.code, open.stderr).toBe(0);
      expect(JSON.parse(open.stdout)).toMatchObject({ ok: true });
    }
    const stranger = path.join(keys, "c.key");
    expect((await runCli(["keygen", "-o", stranger])).code).toBe(0);
    const refused = await runCli(["verify", out.id, "--storage", storage, "--identity", stranger]);
    expect(refused.code).toBe(1);
  });
});
