import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The servers an environment starts (test/env/build-servers.sh servers). */
export interface Servers {
  kubeApiserver: string;
  etcd: string;
  minio: string;
}

/** The command-line tools some tests run (build-servers.sh tools). */
export interface Tools {
  /** filippo.io/age's age command (decrypts what crd-backup encrypts, in tests). */
  age: string;
  helm: string;
  promtool: string;
}

const BUILD_SCRIPT = fileURLToPath(new URL("./build-servers.sh", import.meta.url));

/**
 * Runs build-servers.sh for `what` and returns its NAME=PATH lines. The build's progress goes
 * straight to this process's stderr as it happens, so a first run that builds for minutes is
 * never silent.
 */
async function build(what: "servers" | "tools"): Promise<Record<string, string>> {
  const child = spawn("bash", [BUILD_SCRIPT, what], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`building the test ${what} failed (exit ${code}); its output is above`);
  return Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
}

/** kube-apiserver, etcd and MinIO, built from the Go module proxy or found in the cache. */
export async function ensureServers(): Promise<Servers> {
  const { KUBE_APISERVER, ETCD, MINIO } = await build("servers");
  if (!KUBE_APISERVER || !ETCD || !MINIO) throw new Error("build-servers.sh printed no server binaries");
  return { kubeApiserver: KUBE_APISERVER, etcd: ETCD, minio: MINIO };
}

/** age, helm and promtool: only tests run them, so only tests build them. */
export async function ensureTools(): Promise<Tools> {
  const { AGE, HELM, PROMTOOL } = await build("tools");
  if (!AGE || !HELM || !PROMTOOL) throw new Error("build-servers.sh printed no tool binaries");
  return { age: AGE, helm: HELM, promtool: PROMTOOL };
}
