import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export interface ServerBinaries {
  kubeApiserver: string;
  etcd: string;
  minio: string;
}

const BUILD_SCRIPT = fileURLToPath(new URL("./build-servers.sh", import.meta.url));

/**
 * Builds kube-apiserver, etcd and MinIO from the Go module proxy, or finds them in the cache
 * (test/env/build-servers.sh). Build progress goes to this process's stderr.
 */
export async function ensureServers(): Promise<ServerBinaries> {
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)("bash", [BUILD_SCRIPT], {
      maxBuffer: 64 * 1024 * 1024,
      encoding: "utf8",
    }));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const lines = (err.stderr ?? err.message).trim().split("\n");
    throw new Error(`building the test servers failed: ${lines.slice(-5).join(" | ")}`, { cause: e });
  }
  const vars = Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
  const { KUBE_APISERVER, ETCD, MINIO } = vars;
  if (!KUBE_APISERVER || !ETCD || !MINIO) throw new Error(`build-servers.sh printed no binaries: ${stdout}`);
  return { kubeApiserver: KUBE_APISERVER, etcd: ETCD, minio: MINIO };
}
