import { mapConcurrent } from "../src/concurrency.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { collectionPath, waitForCrdReady } from "../src/kube/discovery.ts";

export const BENCH_GROUP = "bench.crd-backup.io";

/** Seeds `crds` CRDs with `perCrd` objects of about 2 KiB each, over four namespaces; returns the plurals. */
export async function seedBench(
  client: KubeClient,
  crds: number,
  perCrd: number,
  log: (s: string) => void = () => undefined,
): Promise<string[]> {
  const plurals = Array.from({ length: crds }, (_, i) => `things${String(i).padStart(2, "0")}`);
  for (const plural of plurals) {
    await client.request({
      method: "POST",
      path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      body: JSON.stringify({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: `${plural}.${BENCH_GROUP}` },
        spec: {
          group: BENCH_GROUP,
          scope: "Namespaced",
          names: { plural, kind: `Thing${plural.slice(6)}` },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
            },
          ],
        },
      }),
    });
  }
  for (const plural of plurals)
    await waitForCrdReady(client, `${plural}.${BENCH_GROUP}`, { timeoutMs: 60_000 });
  for (const ns of ["bench-a", "bench-b", "bench-c", "bench-d"]) {
    await client.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }),
    });
  }
  const filler = "x".repeat(1700);
  const jobs = plurals.flatMap((plural) => Array.from({ length: perCrd }, (_, i) => ({ plural, i })));
  let done = 0;
  await mapConcurrent(jobs, 24, async ({ plural, i }) => {
    await client.request({
      method: "POST",
      path: collectionPath(BENCH_GROUP, "v1", plural, `bench-${"abcd"[i % 4]}`),
      body: JSON.stringify({
        apiVersion: `${BENCH_GROUP}/v1`,
        kind: `Thing${plural.slice(6)}`,
        metadata: { name: `obj-${i}`, labels: { app: "bench", shard: String(i % 10) } },
        spec: { index: i, counter: JSON.rawJSON("9007199254740993"), payload: filler, tags: ["a", "b", "c"] },
      }),
    });
    if (++done % 10000 === 0) log(`  ${done} objects`);
  });
  return plurals;
}
