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
import {
  isAlive,
  launchServer,
  readServers,
  stopProcesses,
  writeServers,
  type LaunchSpec,
  type Started,
} from "./processes.ts";
import { ensureServers, type Tools } from "./servers.ts";

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
  /** The servers as first started; after stopServer/startServer the registry (readServers) has the current pids. */
  processes: Started[];
  watchdogPid?: number;
  /**
   * Registry names of the servers this view of the environment talks to, when they are not the
   * first ones ("minio", "kube-apiserver"): set by startReplica.
   */
  servers?: Partial<Record<RestartableServer, string>>;
}

/** What integration tests see (test/env/global-setup.ts): the environment and the tools. */
export interface TestEnvironment extends EnvironmentInfo {
  tools: Tools;
}

/** The servers a test may stop and start again. */
export type RestartableServer = "minio" | "kube-apiserver";

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
  writeServers(rootDir, {}); // an empty pids file for the watchdog
  const launch = (spec: LaunchSpec) => {
    const { name, pid, logFile } = launchServer(rootDir, spec.name, spec);
    processes.push({ name, pid, logFile });
  };
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
    launch({
      name: "etcd",
      command: bins.etcd,
      args: [
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
      logFile: path.join(rootDir, "etcd.log"),
      readyUrl: `${etcdUrl}/health`,
    });

    const s3 = {
      endpoint: `http://127.0.0.1:${s3Port}`,
      region: "us-east-1",
      accessKeyId: `test-${randomBytes(6).toString("hex")}`,
      secretAccessKey: randomBytes(24).toString("base64url"),
      bucket: "crd-backup-test",
    };
    launch({
      name: "minio",
      command: bins.minio,
      args: minioArgs(path.join(rootDir, "minio"), s3Port!, s3ConsolePort!),
      logFile: path.join(rootDir, "minio.log"),
      env: {
        MINIO_ROOT_USER: s3.accessKeyId,
        MINIO_ROOT_PASSWORD: s3.secretAccessKey,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
      },
      readyUrl: `${s3.endpoint}/minio/health/ready`,
    });

    await waitFor("etcd", processes[0]!, () => httpOk(`${etcdUrl}/health`), 60_000);

    const apiServer = `https://127.0.0.1:${apiPort}`;
    launch({
      name: "kube-apiserver",
      command: bins.kubeApiserver,
      args: [
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
      logFile: path.join(rootDir, "kube-apiserver.log"),
      readyUrl: `${apiServer}/readyz`,
    });

    const tls = adminTls(rootDir);
    await waitFor("minio", processes[1]!, () => httpOk(`${s3.endpoint}/minio/health/ready`), 60_000);
    await waitFor("kube-apiserver", processes[2]!, () => httpsOk(`${apiServer}/readyz`, tls), 120_000);
    // the system namespaces are made by a controller shortly after readyz; kube-system's uid is the cluster's identity
    await waitFor(
      "kube-system namespace",
      processes[2]!,
      () => httpsOk(`${apiServer}/api/v1/namespaces/kube-system`, tls),
      60_000,
    );

    await createBucket(s3);

    const kubeconfig = path.join(rootDir, "kubeconfig");
    writeFileSync(kubeconfig, adminKubeconfig(apiServer, certs.caCert, certs.adminCert, certs.adminKey), {
      mode: 0o600,
    });
    log(`ready: kube-apiserver ${apiServer}, etcd ${etcdUrl}, MinIO ${s3.endpoint} (logs in ${rootDir})`);
    return {
      rootDir,
      kubeconfig,
      apiServer,
      etcdUrl,
      caCert: certs.caCert,
      s3,
      processes,
      watchdogPid,
    };
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
  // kube-apiserver first, so it does not spend its shutdown retrying a vanished etcd; the registry
  // knows servers restarted or added since the start, env.processes only the first ones
  const order = (name: string) => ["kube-apiserver", "minio", "etcd"].findIndex((n) => name.startsWith(n));
  const registered = Object.values(readServers(env.rootDir)).sort((a, b) => order(a.name) - order(b.name));
  await stopProcesses(
    registered.length > 0
      ? registered.map((s) => s.pid).filter((pid) => pid > 0)
      : env.processes.map((p) => p.pid).reverse(),
  );
  rmSync(env.rootDir, { recursive: true, force: true });
}

/**
 * Stops one server of the environment in the middle of whatever is running: SIGTERM (or SIGKILL
 * with `kill`, a crash), waiting until it is gone. Its port and data directory are kept for
 * startServer. Other test files share the first MinIO and kube-apiserver: stop a replica
 * (startReplica) unless nothing else can be running.
 */
export async function stopServer(
  env: EnvironmentInfo,
  server: RestartableServer,
  options: { kill?: boolean } = {},
): Promise<void> {
  const key = env.servers?.[server] ?? server;
  const record = readServers(env.rootDir)[key];
  if (!record) throw new Error(`test/env: no server ${key} in ${env.rootDir}`);
  if (record.pid > 0) await stopProcesses([record.pid], options.kill ? 0 : 10_000);
  writeServers(env.rootDir, { ...readServers(env.rootDir), [key]: { ...record, pid: 0 } });
}

/**
 * Starts a stopped server again exactly as before: the same port, the same data directory (the
 * bucket survives a MinIO restart; an API server's state is in etcd), the same credentials.
 * Returns once it answers its readiness check.
 */
export async function startServer(env: EnvironmentInfo, server: RestartableServer): Promise<void> {
  const key = env.servers?.[server] ?? server;
  const record = readServers(env.rootDir)[key];
  if (!record) throw new Error(`test/env: no server ${key} in ${env.rootDir}`);
  if (record.pid > 0 && isAlive(record.pid)) throw new Error(`test/env: ${key} is running already`);
  const { pid, logFile } = launchServer(env.rootDir, key, record);
  await waitFor(key, { name: key, pid, logFile }, () => isReady(env.rootDir, record.readyUrl), 120_000);
}

/**
 * One more MinIO (its own port and data directory, with the test bucket) or kube-apiserver (its
 * own port, on the same etcd: it serves the same cluster), for a test that stops and starts a
 * server while other test files keep using the first ones. Returns a view of the environment
 * that points at it; stopServer and startServer on that view act on the replica. The replica is
 * in the registry, so stopEnvironment and the watchdog end it with the rest.
 */
export async function startReplica(
  env: EnvironmentInfo,
  server: RestartableServer,
): Promise<EnvironmentInfo> {
  const servers = readServers(env.rootDir);
  const base = servers[server];
  if (!base) throw new Error(`test/env: no server ${server} in ${env.rootDir}`);
  let n = 2;
  while (servers[`${server}-${n}`]) n++;
  const key = `${server}-${n}`;
  const logFile = path.join(env.rootDir, `${key}.log`);
  let view: EnvironmentInfo;
  let spec: LaunchSpec;
  if (server === "minio") {
    const [port, consolePort] = await Promise.all([freePort(), freePort()]);
    const endpoint = `http://127.0.0.1:${port}`;
    spec = {
      ...base,
      name: key,
      args: minioArgs(path.join(env.rootDir, key), port, consolePort),
      logFile,
      readyUrl: `${endpoint}/minio/health/ready`,
    };
    view = { ...env, s3: { ...env.s3, endpoint }, servers: { ...env.servers, minio: key } };
  } else {
    const port = await freePort();
    const apiServer = `https://127.0.0.1:${port}`;
    spec = {
      ...base,
      name: key,
      args: base.args.map((a) =>
        a.startsWith("--secure-port=")
          ? `--secure-port=${port}`
          : a.startsWith("--cert-dir=")
            ? `--cert-dir=${path.join(env.rootDir, `${key}-certs`)}`
            : a,
      ),
      logFile,
      readyUrl: `${apiServer}/readyz`,
    };
    const kubeconfig = path.join(env.rootDir, `kubeconfig-${key}`);
    const pki = (f: string) => path.join(env.rootDir, "pki", f);
    writeFileSync(kubeconfig, adminKubeconfig(apiServer, pki("ca.crt"), pki("admin.crt"), pki("admin.key")), {
      mode: 0o600,
    });
    view = { ...env, apiServer, kubeconfig, servers: { ...env.servers, "kube-apiserver": key } };
  }
  const { pid } = launchServer(env.rootDir, key, spec);
  await waitFor(key, { name: key, pid, logFile }, () => isReady(env.rootDir, spec.readyUrl), 120_000);
  if (server === "minio") await createBucket(view.s3);
  return view;
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

function minioArgs(dataDir: string, port: number, consolePort: number): string[] {
  return [
    "server",
    dataDir,
    `--address=127.0.0.1:${port}`,
    `--console-address=127.0.0.1:${consolePort}`,
    "--quiet",
  ];
}

/** The admin client certificate (system:masters) and the CA, from the environment's PKI. */
function adminTls(rootDir: string): https.RequestOptions {
  const pki = (f: string) => readFileSync(path.join(rootDir, "pki", f));
  return { ca: pki("ca.crt"), cert: pki("admin.crt"), key: pki("admin.key") };
}

async function createBucket(s3: S3Settings): Promise<void> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  } finally {
    client.destroy();
  }
}

function isReady(rootDir: string, url: string): Promise<boolean> {
  return url.startsWith("https:") ? httpsOk(url, adminTls(rootDir)) : httpOk(url);
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
