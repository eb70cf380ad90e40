import { KubeConfig } from "@kubernetes/client-node";
import { CrdBackupError } from "../errors.ts";

export interface KubeConfigOptions {
  /** Path to a kubeconfig file; otherwise KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  /** A context name from the kubeconfig; otherwise its current context. */
  context?: string;
}

/** Loads credentials the way kubectl does; the result never leaves this process in a log. */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
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
