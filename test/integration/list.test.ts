import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { collectionPath } from "../../src/kube/discovery.ts";
import { isJsonObject } from "../../src/json/json.ts";
import { listPages, newListOutcome } from "../../src/kube/list.ts";
import { compactEtcd } from "../env/compact.ts";
import {
  adminClient,
  createCrd,
  createNamespace,
  mapConcurrent,
  testEnv,
  uniqueName,
  waitForCrdEstablished,
} from "../support/cluster.ts";

describe("paginated listing", () => {
  let admin: KubeClient;
  const group = `${uniqueName("list")}.crd-backup.io`;
  const ns = uniqueName("list");

  beforeAll(async () => {
    admin = await adminClient();
    await createCrd(admin, {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `items.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural: "items", kind: "Item" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        ],
      },
    });
    await waitForCrdEstablished(admin, `items.${group}`);
    await createNamespace(admin, ns);
    await mapConcurrent(
      Array.from({ length: 30 }, (_, i) => `item-${String(i).padStart(2, "0")}`),
      8,
      (name) =>
        admin.request({
          method: "POST",
          path: collectionPath(group, "v1", "items", ns),
          body: JSON.stringify({
            apiVersion: `${group}/v1`,
            kind: "Item",
            metadata: { name },
            spec: { v: 1 },
          }),
        }),
    );
  });
  afterAll(() => admin.close());

  it("survives an expired continue token: no object lost or duplicated, and the listing is marked inconsistent", async () => {
    const outcome = newListOutcome();
    const pages = listPages(admin, collectionPath(group, "v1", "items"), { pageSize: 10 }, outcome);
    const seen: string[] = [];
    const take = (page: unknown[]) => {
      for (const o of page)
        if (isJsonObject(o as never)) seen.push(String((o as { metadata: { name: string } }).metadata.name));
    };
    const first = await pages.next();
    take(first.value as unknown[]);
    // change the cluster, then compact etcd past the first page's resourceVersion
    await admin.request({
      method: "POST",
      path: collectionPath(group, "v1", "items", ns),
      body: JSON.stringify({
        apiVersion: `${group}/v1`,
        kind: "Item",
        metadata: { name: "item-99" },
        spec: { v: 2 },
      }),
    });
    await compactEtcd(testEnv().etcdUrl);
    await new Promise((r) => setTimeout(r, 17_000)); // the watch cache's compaction poll period is 15 s
    for await (const page of { [Symbol.asyncIterator]: () => pages }) take(page);

    expect(outcome.expiredTokens).toBeGreaterThanOrEqual(1);
    expect(outcome.consistent).toBe(false);
    expect(new Set(seen).size).toBe(seen.length); // nothing twice
    for (let i = 0; i < 30; i++) expect(seen).toContain(`item-${String(i).padStart(2, "0")}`); // nothing lost
    expect(seen).toContain("item-99"); // the rest came from the newer state
  });

  it("lists consistently when nothing expires", async () => {
    const outcome = newListOutcome();
    let n = 0;
    for await (const page of listPages(admin, collectionPath(group, "v1", "items"), { pageSize: 7 }, outcome))
      n += page.length;
    expect(n).toBeGreaterThanOrEqual(30);
    expect(outcome.consistent).toBe(true);
    expect(outcome.pages).toBe(Math.ceil(n / 7));
    expect(outcome.resourceVersion).toMatch(/^\d+$/);
  });
});
