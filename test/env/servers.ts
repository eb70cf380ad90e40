import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The programs test/env/build-servers.sh builds: the servers, and the tools some tests run. */
export interface ServerBinaries {
  kubeApiserver: string;
  etcd: string;
  minio: string;
  /** filippo.io/age's age command (decrypts what crd-backup encrypts, in tests). */
  age: string;
  helm: string;
  promtool: string;
}

const BUILD_SCRIPT = fileURLToPath(new URL("./build-servers.sh", import.meta.url));

/**
 * Builds kube-apiserver, etcd, MinIO, age, helm and promtool from the Go module proxy, or finds
 * them in the cache (test/env/build-servers.sh). The build's progress goes straight to this
 * process's stderr as it happens, so a first run that builds for minutes is never silent.
 */
export async function ensureServers(): Promise<ServerBinaries> {
  const child = spawn("bash", [BUILD_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`building the test servers failed (exit ${code}); its output is above`);
  const vars = Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
  const { KUBE_APISERVER, ETCD, MINIO, AGE, HELM, PROMTOOL } = vars;
  if (!KUBE_APISERVER || !ETCD || !MINIO || !AGE || !HELM || !PROMTOOL)
    throw new Error(`build-servers.sh printed no binaries: ${stdout}`);
  return {
    kubeApiserver: KUBE_APISERVER,
    etcd: ETCD,
    minio: MINIO,
    age: AGE,
    helm: HELM,
    promtool: PROMTOOL,
  };
}
