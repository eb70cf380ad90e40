import { setTimeout as sleep } from "node:timers/promises";
import type { LoadedFixtures } from "../../fixtures/load.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";

/**
 * Deletes the fixtures' CRDs, and with them every instance (the API server's own CRD cleanup),
 * clearing the widgets' finalizers first: no controller will ever clear them here.
 */
export async function deleteFixtures(admin: KubeClient, fx: LoadedFixtures): Promise<void> {
  for (const ns of fx.namespaces) {
    for (let i = 0; ; i++) {
      try {
        await admin.request({
          method: "PATCH",
          path: `/apis/${fx.group}/v1/namespaces/${ns}/widgets/widget-${String(i).padStart(4, "0")}`,
          body: JSON.stringify({ metadata: { finalizers: null } }),
          contentType: "application/merge-patch+json",
        });
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) break;
        throw e;
      }
    }
  }
  for (const name of fx.crdNames) {
    await admin.request({
      method: "DELETE",
      path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
    });
  }
  for (const name of fx.crdNames) {
    for (let i = 0; ; i++) {
      try {
        await admin.request({ path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}` });
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) break;
        throw e;
      }
      if (i > 300) throw new Error(`CRD ${name} not deleted after 60s`);
      await sleep(200);
    }
  }
}
