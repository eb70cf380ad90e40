import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { CrdBackupError } from "../errors.ts";

/** Where a pod's service account token is mounted (client-node's loadFromCluster reads it there). */
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export interface KubeConfigOptions {
  /** Path to a kubeconfig file; otherwise KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  /** A context name from the kubeconfig; otherwise its current context. */
  context?: string;
  /**
   * Only the pod's service account, never a kubeconfig file: for a command that writes, so that it
   * never falls back to a laptop's default context.
   */
  inCluster?: boolean;
}

/** Loads credentials the way kubectl does; the result never leaves this process in a log. */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  if (options.inCluster) return inCluster(kc);
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new CrdBackupError("CONFIG", `cannot load kubeconfig: ${(e as Error).message}`, {
      kubeconfig: options.kubeconfig,
    });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new CrdBackupError("CONFIG", `kubeconfig has no context named "${options.context}"`, {
        context: options.context,
      });
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new CrdBackupError(
      "CONFIG",
      "kubeconfig names no cluster for the current context (is KUBECONFIG set?)",
    );
  }
  return kc;
}

function inCluster(kc: KubeConfig): KubeConfig {
  // loadFromCluster itself checks nothing: outside a pod it would aim at "https://undefined:undefined"
  if (!process.env["KUBERNETES_SERVICE_HOST"] || !process.env["KUBERNETES_SERVICE_PORT"])
    throw new CrdBackupError(
      "CONFIG",
      "not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
    );
  if (!existsSync(SERVICE_ACCOUNT_TOKEN))
    throw new CrdBackupError(
      "CONFIG",
      `no service account token at ${SERVICE_ACCOUNT_TOKEN} (is automountServiceAccountToken false?)`,
    );
  kc.loadFromCluster();
  return kc;
}
