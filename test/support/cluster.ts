import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { KubeClient } from "../../src/kube/client.ts";
export { mapConcurrent } from "../../src/concurrency.ts";
import { loadKubeConfig } from "../../src/kube/config.ts";
import { waitForCrdReady } from "../../src/kube/discovery.ts";
import type { TestEnvironment } from "../env/environment.ts";

export function testEnv(): TestEnvironment {
  return inject("env");
}

export async function clientFor(kubeconfig: string): Promise<KubeClient> {
  return KubeClient.create(loadKubeConfig({ kubeconfig }));
}

/** The environment's admin (system:masters) client. */
export function adminClient(): Promise<KubeClient> {
  return clientFor(testEnv().kubeconfig);
}

/** A name no other test or run has used: the cluster has no garbage collection, so tests never reuse names. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export async function createCrd(admin: KubeClient, crd: object): Promise<void> {
  await admin.request({
    method: "POST",
    path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    body: JSON.stringify(crd),
  });
}

export function waitForCrdEstablished(admin: KubeClient, name: string, timeoutMs = 30_000): Promise<void> {
  return waitForCrdReady(admin, name, { timeoutMs });
}

export async function createNamespace(admin: KubeClient, name: string): Promise<void> {
  await admin.request({
    method: "POST",
    path: "/api/v1/namespaces",
    body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }),
  });
}
