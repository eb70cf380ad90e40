import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { generateCerts } from "./certs.ts";
import { freePort } from "./ports.ts";
import { isAlive, startProcess, stopProcesses, type Started } from "./processes.ts";
import { ensureServers } from "./servers.ts";

export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** What a test (or a human, through .testenv/env.sh) needs to reach one running environment. */
export interface EnvironmentInfo {
  rootDir: string;
  kubeconfig: string;
  apiServer: string;
  /** etcd's client URL, for tests that must reach under the API server (forcing a compaction, say). */
  etcdUrl: string;
  caCert: string;
  s3: S3Settings;
  processes: Started[];
  watchdogPid?: number;
}

export interface StartOptions {
  /** Keep the servers running after this process exits (npm run env:up); otherwise a watchdog ends them. */
  persistent?: boolean;
  /** kube-apiserver --etcd-compaction-interval (lets tests make continue tokens expire). */
  etcdCompactionInterval?: string;
  log?: (line: string) => void;
}

const WATCHDOG = fileURLToPath(new URL("./watchdog.sh", import.meta.url));

export async function startEnvironment(options: StartOptions = {}): Promise<EnvironmentInfo> {
  const log = options.log ?? ((l: string) => process.stderr.write(`test/env: ${l}\n`));
  const bins = await ensureServers();
  const rootDir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-env-"));
  const processes: Started[] = [];
  let watchdogPid: number | undefined;
  const recordPids = () =>
    writeFileSync(path.join(rootDir, "pids"), processes.map((p) => p.pid).join("\n") + "\n");
  recordPids();
  if (!options.persistent) {
    const wd = spawn("bash", [WATCHDOG, String(process.pid), rootDir], { detached: true, stdio: "ignore" });
    wd.unref();
    watchdogPid = wd.pid;
  }

  try {
    const pki = path.join(rootDir, "pki");
    mkdirSync(pki);
    const certs = generateCerts(pki);

    const [etcdPort, etcdPeerPort, apiPort, s3Port, s3ConsolePort] = await Promise.all(
      Array.from({ length: 5 }, freePort),
    );

    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    processes.push(
      startProcess(
        "etcd",
        bins.etcd,
        [
          "--name=test",
          `--data-dir=${path.join(rootDir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=test=${peerUrl}`,
          "--unsafe-no-fsync=true", // a test cluster needs speed, not durability across power loss
          "--quota-backend-bytes=8589934592",
          "--log-level=warn",
        ],
        { logFile: path.join(rootDir, "etcd.log") },
      ),
    );
    recordPids();

    const s3 = {
      endpoint: `http://127.0.0.1:${s3Port}`,
      region: "us-east-1",
      accessKeyId: `test-${randomBytes(6).toString("hex")}`,
      secretAccessKey: randomBytes(24).toString("base64url"),
      bucket: "crd-backup-test",
    };
    processes.push(
      startProcess(
        "minio",
        bins.minio,
        [
          "server",
          path.join(rootDir, "minio"),
          `--address=127.0.0.1:${s3Port}`,
          `--console-address=127.0.0.1:${s3ConsolePort}`,
          "--quiet",
        ],
        {
          logFile: path.join(rootDir, "minio.log"),
          env: {
            MINIO_ROOT_USER: s3.accessKeyId,
            MINIO_ROOT_PASSWORD: s3.secretAccessKey,
            MINIO_BROWSER: "off",
            MINIO_UPDATE: "off",
          },
        },
      ),
    );
    recordPids();

    await waitFor("etcd", processes[0]!, () => httpOk(`${etcdUrl}/health`), 60_000);

    const apiServer = `https://127.0.0.1:${apiPort}`;
    processes.push(
      startProcess(
        "kube-apiserver",
        bins.kubeApiserver,
        [
          `--etcd-servers=${etcdUrl}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          `--tls-cert-file=${certs.serverCert}`,
          `--tls-private-key-file=${certs.serverKey}`,
          `--client-ca-file=${certs.caCert}`,
          "--authorization-mode=RBAC",
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          `--service-account-key-file=${certs.serviceAccountPub}`,
          `--service-account-signing-key-file=${certs.serviceAccountKey}`,
          "--service-cluster-ip-range=10.96.0.0/16",
          `--cert-dir=${path.join(rootDir, "apiserver-certs")}`,
          "--endpoint-reconciler-type=none",
          "--profiling=false",
          ...(options.etcdCompactionInterval
            ? [`--etcd-compaction-interval=${options.etcdCompactionInterval}`]
            : []),
        ],
        { logFile: path.join(rootDir, "kube-apiserver.log") },
      ),
    );
    recordPids();

    const tls = {
      ca: readFileSync(certs.caCert),
      cert: readFileSync(certs.adminCert),
      key: readFileSync(certs.adminKey),
    };
    await waitFor("minio", processes[1]!, () => httpOk(`${s3.endpoint}/minio/health/ready`), 60_000);
    await waitFor("kube-apiserver", processes[2]!, () => httpsOk(`${apiServer}/readyz`, tls), 120_000);
    // the system namespaces are made by a controller shortly after readyz; kube-system's uid is the cluster's identity
    await waitFor(
      "kube-system namespace",
      processes[2]!,
      () => httpsOk(`${apiServer}/api/v1/namespaces/kube-system`, tls),
      60_000,
    );

    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
    client.destroy();

    const kubeconfig = path.join(rootDir, "kubeconfig");
    writeFileSync(kubeconfig, adminKubeconfig(apiServer, certs.caCert, certs.adminCert, certs.adminKey), {
      mode: 0o600,
    });
    log(`ready: kube-apiserver ${apiServer}, etcd ${etcdUrl}, MinIO ${s3.endpoint} (logs in ${rootDir})`);
    return { rootDir, kubeconfig, apiServer, etcdUrl, caCert: certs.caCert, s3, processes, watchdogPid };
  } catch (e) {
    for (const p of processes) {
      const tail = safeTail(p.logFile);
      if (tail) log(`${p.name} log (last lines):\n${tail}`);
    }
    await stopEnvironment({ rootDir, processes, watchdogPid });
    throw e;
  }
}

export async function stopEnvironment(
  env: Pick<EnvironmentInfo, "rootDir" | "processes" | "watchdogPid">,
): Promise<void> {
  if (env.watchdogPid && isAlive(env.watchdogPid)) {
    try {
      process.kill(-env.watchdogPid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  // kube-apiserver first, so it does not spend its shutdown retrying a vanished etcd
  await stopProcesses(env.processes.map((p) => p.pid).reverse());
  rmSync(env.rootDir, { recursive: true, force: true });
}

/** Shell lines that point crd-backup, the AWS SDK and kubectl at this environment. */
export function exportLines(env: EnvironmentInfo): string {
  const vars: Record<string, string> = {
    KUBECONFIG: env.kubeconfig,
    AWS_ENDPOINT_URL: env.s3.endpoint,
    AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
    AWS_REGION: env.s3.region,
    CRD_BACKUP_TEST_BUCKET: env.s3.bucket,
  };
  return Object.entries(vars)
    .map(([k, v]) => `export ${k}='${v}'`)
    .join("\n");
}

function adminKubeconfig(server: string, ca: string, cert: string, key: string): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "crd-backup-test", cluster: { server, "certificate-authority": ca } }],
      users: [{ name: "admin", user: { "client-certificate": cert, "client-key": key } }],
      contexts: [{ name: "crd-backup-test", context: { cluster: "crd-backup-test", user: "admin" } }],
      "current-context": "crd-backup-test",
    },
    null,
    2,
  );
}

async function waitFor(
  what: string,
  proc: Started,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(proc.pid))
      throw new Error(`test/env: ${proc.name} exited while waiting for ${what} (see ${proc.logFile})`);
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`test/env: ${what} not ready within ${timeoutMs / 1000}s (see ${proc.logFile})`);
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

function httpsOk(url: string, tls: https.RequestOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...tls, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

function safeTail(file: string): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}
