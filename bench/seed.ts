import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { mapConcurrent } from "../src/concurrency.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { collectionPath, waitForCrdReady } from "../src/kube/discovery.ts";

export const BENCH_GROUP = "bench.crd-backup.io";

/** The payload that makes a bench object about 2 KiB as stored (with its server fields). */
export const DEFAULT_PAYLOAD = 1700;

/**
 * Seeds `crds` CRDs with `perCrd` objects over four namespaces; returns the plurals. `payload`:
 * the bytes of filler in each spec (DEFAULT_PAYLOAD: about 2 KiB an object as stored; 0: about
 * 300 bytes without managedFields, what fits a million objects in the test kube-apiserver).
 * `via.etcdUrl`: the objects written into etcd directly (putViaEtcd), not created through the API.
 */
export async function seedBench(
  client: KubeClient,
  crds: number,
  perCrd: number,
  log: (s: string) => void = () => undefined,
  payload = DEFAULT_PAYLOAD,
  via: { etcdUrl?: string } = {},
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
  const jobs = plurals.flatMap((plural) => Array.from({ length: perCrd }, (_, i) => ({ plural, i })));
  let done = 0;
  if (via.etcdUrl) {
    await putViaEtcd(via.etcdUrl, jobs, payload, () => {
      if ((done += ETCD_BATCH) % 10000 === 0) log(`  ${done} objects`);
    });
    return plurals;
  }
  await mapConcurrent(jobs, 24, async ({ plural, i }) => {
    await client.request({
      method: "POST",
      path: collectionPath(BENCH_GROUP, "v1", plural, namespaceOf(i)),
      body: JSON.stringify(benchObject(plural, i, payload)),
    });
    if (++done % 10000 === 0) log(`  ${done} objects`);
  });
  return plurals;
}

const namespaceOf = (i: number) => `bench-${"abcd"[i % 4]}`;

function benchObject(plural: string, i: number, payload: number) {
  return {
    apiVersion: `${BENCH_GROUP}/v1`,
    kind: `Thing${plural.slice(6)}`,
    metadata: { name: `obj-${i}`, labels: { app: "bench", shard: String(i % 10) } },
    spec: {
      index: i,
      counter: JSON.rawJSON("9007199254740993"),
      payload: "x".repeat(payload),
      tags: ["a", "b", "c"],
    },
  };
}

/** Puts per etcd transaction (etcd's default --max-txn-ops is 128). */
const ETCD_BATCH = 100;

/**
 * Writes the objects straight into etcd, as kube-apiserver stores a custom resource (JSON under
 * /registry/<group>/<plural>/<namespace>/<name>, its metadata as the server sets it but without
 * managedFields): about 50 times faster than creating them through the API, which at a million
 * objects on 2 cores takes most of an hour. The API server's watch cache sees them as created.
 */
async function putViaEtcd(
  etcdUrl: string,
  jobs: readonly { plural: string; i: number }[],
  payload: number,
  progress: () => void,
): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const batches: (typeof jobs)[] = [];
  for (let at = 0; at < jobs.length; at += ETCD_BATCH) batches.push(jobs.slice(at, at + ETCD_BATCH));
  const created = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await mapConcurrent(batches, 8, async (batch) => {
    const success = batch.map(({ plural, i }) => {
      const object = benchObject(plural, i, payload);
      const namespace = namespaceOf(i);
      const metadata = {
        ...object.metadata,
        namespace,
        uid: randomUUID(),
        creationTimestamp: created,
        generation: 1,
      };
      const key = `/registry/${BENCH_GROUP}/${plural}/${namespace}/${object.metadata.name}`;
      return { requestPut: { key: b64(key), value: b64(JSON.stringify({ ...object, metadata })) } };
    });
    const res = await fetch(`${etcdUrl}/v3/kv/txn`, { method: "POST", body: JSON.stringify({ success }) });
    if (!res.ok) throw new Error(`etcd txn: ${res.status} ${await res.text()}`);
    progress();
  });
}

/** What paced writes did: how many were sent, how many the server refused, over how long. */
export interface Writes {
  sent: number;
  failed: number;
  seconds: number;
}

/**
 * Merge-patches the seeded objects round robin at `rate` a second for `seconds`, `concurrency` at
 * once (the load bench:record and bench:standby put on a cluster). A cluster slower than the rate
 * stops at the deadline, not once rate x seconds were sent.
 */
export async function patchAtRate(
  client: KubeClient,
  plurals: readonly string[],
  objects: number,
  options: { rate: number; seconds: number; concurrency: number },
): Promise<Writes> {
  let sent = 0;
  let failed = 0;
  const start = performance.now();
  const deadline = start + options.seconds * 1000;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      for (;;) {
        const due = start + (sent / options.rate) * 1000;
        if (due > deadline || performance.now() > deadline) return;
        const n = sent++;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const i = n % objects;
        const index = Math.floor(i / plurals.length);
        try {
          await client.request({
            method: "PATCH",
            path: `${collectionPath(BENCH_GROUP, "v1", plurals[i % plurals.length]!, namespaceOf(index))}/obj-${index}`,
            body: JSON.stringify({ spec: { n } }),
            contentType: "application/merge-patch+json",
          });
        } catch {
          failed++;
        }
      }
    }),
  );
  return { sent, failed, seconds: (performance.now() - start) / 1000 };
}
