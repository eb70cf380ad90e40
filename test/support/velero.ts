/**
 * A real Velero server (built by test/env/build-velero.sh) run outside the cluster against the
 * test kube-apiserver, with the AWS object-store plugin and a backup storage location on the test
 * MinIO: what the Velero import tests and bench/import.ts back up with. Backups are made by
 * creating Backup objects (velero.io/v1) with the kube API, as `velero backup create` does.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { waitForCrdReady } from "../../src/kube/discovery.ts";
import { freePort } from "../env/ports.ts";
import { isAlive, startProcess, stopProcesses } from "../env/processes.ts";

const BUILD = fileURLToPath(new URL("../env/build-velero.sh", import.meta.url));

export interface VeleroBinaries {
  velero: string;
  plugin: string;
}

/** The S3 settings of the location Velero writes to (the test env's MinIO, or bench's). */
export interface VeleroS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** Velero's final backup phases (pkg/apis/velero/v1/backup_types.go). */
const FINISHED = new Set(["Completed", "PartiallyFailed", "Failed", "FailedValidation"]);

let built: Promise<VeleroBinaries> | undefined;

/**
 * Builds Velero and its AWS plugin on first use (cached by version afterwards). A failed build
 * fails the caller with the build's last lines: the tests never pass by not running Velero.
 */
export function ensureVelero(): Promise<VeleroBinaries> {
  built ??= new Promise((resolve, reject) => {
    const child = spawn("bash", [BUILD], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
      process.stderr.write(c); // a cold build takes minutes: show its progress
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const paths = Object.fromEntries(
        stdout
          .split("\n")
          .filter((l) => l.includes("="))
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      if (code !== 0 || !paths["VELERO"] || !paths["VELERO_PLUGIN_AWS"])
        reject(
          new Error(
            `test/env/build-velero.sh failed (exit ${code}):\n${stderr.split("\n").slice(-25).join("\n")}`,
          ),
        );
      else resolve({ velero: paths["VELERO"], plugin: paths["VELERO_PLUGIN_AWS"] });
    });
  });
  return built;
}

async function createOrKeep(admin: KubeClient, collection: string, body: object): Promise<void> {
  try {
    await admin.request({ method: "POST", path: collection, body: JSON.stringify(body) });
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 409)) throw e;
  }
}

/** Velero's CRDs, as `velero install --crds-only` would apply them (kept if another run applied them). */
export async function installVeleroCrds(admin: KubeClient, bins: VeleroBinaries): Promise<void> {
  const out = spawnSync(bins.velero, ["install", "--crds-only", "--dry-run", "-o", "json"], {
    encoding: "utf8",
    env: { PATH: process.env["PATH"] ?? "", HOME: os.tmpdir() },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (out.status !== 0) throw new Error(`velero install --crds-only failed: ${out.stderr}`);
  const list = JSON.parse(out.stdout) as { items: { metadata: { name: string } }[] };
  const crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  for (const crd of list.items) await createOrKeep(admin, crds, crd);
  for (const crd of list.items) await waitForCrdReady(admin, crd.metadata.name, { timeoutMs: 60_000 });
}

export interface BackupSpec {
  includedNamespaces?: string[];
  includedResources: string[];
  includeClusterResources?: boolean;
}

export interface VeleroServer {
  namespace: string;
  /** Where the backup storage location is in the bucket: Velero writes `backups/<name>/...` under it. */
  prefix: string;
  bucket: string;
  logFile: string;
  /** Creates a Backup and waits until Velero has finished it; throws with the server's log unless Completed. */
  backup(name: string, spec: BackupSpec, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function logTail(file: string, lines = 40): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function getObject(admin: KubeClient, p: string): Promise<Record<string, unknown>> {
  return JSON.parse((await admin.request({ path: p })).text) as Record<string, unknown>;
}

/** Polls `read` until it gives a value, or fails naming `what` with the server's log. */
async function waitFor<T>(
  what: string,
  logFile: string,
  pid: number,
  timeoutMs: number,
  read: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (!isAlive(pid))
      throw new Error(`velero server exited while waiting for ${what}:\n${logTail(logFile)}`);
    if (Date.now() > deadline)
      throw new Error(`${what}: not after ${timeoutMs / 1000}s; velero server log:\n${logTail(logFile)}`);
    await sleep(500);
  }
}

/**
 * Starts `velero server` in a fresh namespace, on 127.0.0.1 only, with a backup storage location
 * `default` under a fresh prefix of `s3.bucket`, and waits until Velero finds that location
 * Available. Velero's CRDs are applied first.
 */
export async function startVelero(
  admin: KubeClient,
  options: { kubeconfig: string; s3: VeleroS3; namespace: string; prefix: string },
): Promise<VeleroServer> {
  const bins = await ensureVelero();
  await installVeleroCrds(admin, bins);
  const { namespace, prefix, s3 } = options;
  await createOrKeep(admin, "/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: namespace },
  });
  // the Secret `velero install` makes: an AWS shared credentials file under the key `cloud`
  await createOrKeep(admin, `/api/v1/namespaces/${namespace}/secrets`, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "cloud-credentials", namespace },
    stringData: {
      cloud: `[default]\naws_access_key_id=${s3.accessKeyId}\naws_secret_access_key=${s3.secretAccessKey}\n`,
    },
  });
  const velero = `/apis/velero.io/v1/namespaces/${namespace}`;
  await createOrKeep(admin, `${velero}/backupstoragelocations`, {
    apiVersion: "velero.io/v1",
    kind: "BackupStorageLocation",
    metadata: { name: "default", namespace },
    spec: {
      provider: "velero.io/aws",
      default: true,
      objectStorage: { bucket: s3.bucket, prefix },
      config: { region: s3.region, s3ForcePathStyle: "true", s3Url: s3.endpoint },
      credential: { name: "cloud-credentials", key: "cloud" },
    },
  });

  // Velero writes a location's credentials under os.TempDir(): a private one per server
  const home = mkdtempSync(path.join(os.tmpdir(), "crd-backup-velero-server-"));
  const [metrics, profiler] = await Promise.all([freePort(), freePort()]);
  const logFile = path.join(home, "velero.log");
  const server = startProcess(
    "velero",
    bins.velero,
    [
      "server",
      `--kubeconfig=${options.kubeconfig}`,
      `--namespace=${namespace}`,
      `--plugin-dir=${path.dirname(bins.plugin)}`,
      `--metrics-address=127.0.0.1:${metrics}`,
      `--profiler-address=127.0.0.1:${profiler}`,
      "--features=",
      "--uploader-type=kopia",
      "--log-level=info",
      "--store-validation-frequency=5s",
      // what a backup needs runs; schedules, restores, syncing and collecting expired backups do not
      "--disable-controllers=schedule,gc,backup-sync,restore,restore-operations,restore-finalizer,server-status-request,backup-repo",
    ],
    {
      logFile,
      env: { HOME: home, TMPDIR: home, VELERO_NAMESPACE: namespace, AWS_EC2_METADATA_DISABLED: "true" },
    },
  );
  const stop = () => stopProcesses([server.pid]);
  try {
    await waitFor("backup storage location Available", logFile, server.pid, 120_000, async () => {
      const bsl = await getObject(admin, `${velero}/backupstoragelocations/default`);
      return (bsl["status"] as { phase?: string } | undefined)?.phase === "Available" ? true : undefined;
    });
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    namespace,
    prefix,
    bucket: s3.bucket,
    logFile,
    stop,
    async backup(name, spec, timeoutMs = 300_000) {
      await admin.request({
        method: "POST",
        path: `${velero}/backups`,
        body: JSON.stringify({
          apiVersion: "velero.io/v1",
          kind: "Backup",
          metadata: { name, namespace },
          spec: { ...spec, storageLocation: "default", snapshotVolumes: false, ttl: "720h0m0s" },
        }),
      });
      const phase = await waitFor(`Velero backup ${name}`, logFile, server.pid, timeoutMs, async () => {
        const b = await getObject(admin, `${velero}/backups/${name}`);
        const p = (b["status"] as { phase?: string } | undefined)?.phase;
        return p !== undefined && FINISHED.has(p) ? p : undefined;
      });
      if (phase !== "Completed")
        throw new Error(`Velero backup ${name} ended ${phase}; velero server log:\n${logTail(logFile)}`);
    },
  };
}
