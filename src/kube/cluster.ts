import type { KubeClient } from "./client.ts";
import { isJsonObject, parseJson } from "../json/json.ts";

export interface ClusterIdentity {
  /** The kube-system namespace's uid: stable for a cluster's life, distinct between clusters. */
  uid: string;
  /** The API server URL, without credentials. */
  server: string;
  serverVersion: string;
}

export async function clusterIdentity(client: KubeClient, signal?: AbortSignal): Promise<ClusterIdentity> {
  const [nsAnswer, versionAnswer] = await Promise.all([
    client.request({ path: "/api/v1/namespaces/kube-system", signal }),
    client.request({ path: "/version", signal }),
  ]);
  const ns = parseJson(nsAnswer.text);
  const version = parseJson(versionAnswer.text);
  const uid = isJsonObject(ns) && isJsonObject(ns["metadata"]) ? String(ns["metadata"]["uid"] ?? "") : "";
  const gitVersion = isJsonObject(version) ? String(version["gitVersion"] ?? "") : "";
  const server = new URL(client.server);
  server.username = "";
  server.password = "";
  return { uid, server: server.toString().replace(/\/$/, ""), serverVersion: gitVersion };
}
