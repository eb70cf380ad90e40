import { createRequire } from "node:module";
import type * as ClientNode from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node";
import { CrdBackupError } from "../errors.ts";

/**
 * @kubernetes/client-node is loaded on first use, not with this module: it takes ~0.5 s and ~85 MB
 * to load (its generated API comes with it), and commands that never talk to a cluster (list,
 * inspect, verify, prune) import this module through the CLI's shared options.
 */
const clientNode = (): typeof ClientNode =>
  createRequire(import.meta.url)("@kubernetes/client-node") as typeof ClientNode;

export interface KubeConfigOptions {
  /** Path to a kubeconfig file; otherwise KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  /** A context name from the kubeconfig; otherwise its current context. */
  context?: string;
}

/** Loads credentials the way kubectl does; the result never leaves this process in a log. */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new (clientNode().KubeConfig)();
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
