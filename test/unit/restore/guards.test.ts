import { describe, expect, it } from "vitest";
import { CrdBackupError, KubeApiError } from "../../../src/errors.ts";
import type { KubeClient } from "../../../src/kube/client.ts";
import { isBuiltinGroup } from "../../../src/kube/builtin-groups.ts";
import {
  aggregatedBy,
  conversionWebhook,
  refuseAggregated,
  refuseBuiltinResources,
  refuseResourcesWithoutCrd,
  webhookTarget,
} from "../../../src/restore/guards.ts";

const ID = "20261122T041500Z-1a2b3c4d";

function thrown(work: () => unknown): CrdBackupError {
  try {
    work();
  } catch (e) {
    expect(e).toBeInstanceOf(CrdBackupError);
    return e as CrdBackupError;
  }
  throw new Error("expected a refusal");
}

describe("built-in API groups", () => {
  it.each([
    "",
    "apps",
    "batch",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "storagemigration.k8s.io",
    "extensions",
  ])("%j is built in", (group) => expect(isBuiltinGroup(group)).toBe(true));

  it.each([
    "gateway.networking.k8s.io",
    "snapshot.storage.k8s.io",
    "cluster.x-k8s.io",
    "metrics.k8s.io",
    "cert-manager.io",
    "apps.example.com",
    "k8s.io",
  ])("%j is not (CRDs and aggregated APIs may use it)", (group) => expect(isBuiltinGroup(group)).toBe(false));
});

describe("refuseBuiltinResources", () => {
  it("refuses the whole manifest in one line naming the first built-in resource and how many more", () => {
    const e = thrown(() =>
      refuseBuiltinResources(ID, [
        { group: "example.com", plural: "widgets" },
        { group: "rbac.authorization.k8s.io", plural: "clusterrolebindings" },
        { group: "apps", plural: "deployments" },
      ]),
    );
    expect(e.code).toBe("ARCHIVE_INVALID");
    expect(e.message).toBe(
      `snapshot ${ID}: refusing clusterrolebindings.rbac.authorization.k8s.io (and 1 more): rbac.authorization.k8s.io is a built-in API group; crd-backup restores only custom resources, and nothing was written`,
    );
    expect(e.context["resource"]).toBe("clusterrolebindings.rbac.authorization.k8s.io");
  });

  it("names the core group's resources by their plural", () => {
    expect(thrown(() => refuseBuiltinResources(ID, [{ group: "", plural: "secrets" }])).message).toMatch(
      /refusing secrets: the core API group is built in;/,
    );
  });

  it("lets custom resources through, k8s.io CRD groups included", () => {
    expect(() =>
      refuseBuiltinResources(ID, [
        { group: "example.com", plural: "widgets" },
        { group: "gateway.networking.k8s.io", plural: "httproutes" },
      ]),
    ).not.toThrow();
  });
});

describe("refuseResourcesWithoutCrd", () => {
  const resources = [
    { group: "example.com", plural: "widgets" },
    { group: "example.com", plural: "gadgets" },
  ];

  it("asks the cluster only about resources without an archived CRD", async () => {
    const asked: string[] = [];
    await refuseResourcesWithoutCrd(ID, resources, new Set(["widgets.example.com"]), async (name) => {
      asked.push(name);
      return true;
    });
    expect(asked).toEqual(["gadgets.example.com"]);
  });

  it("refuses a resource whose CRD is neither archived nor live", async () => {
    const e = await refuseResourcesWithoutCrd(
      ID,
      resources,
      new Set(["widgets.example.com"]),
      async () => false,
    ).then(
      () => undefined,
      (err: unknown) => err as CrdBackupError,
    );
    expect(e?.code).toBe("ARCHIVE_INVALID");
    expect(e?.message).toBe(
      `snapshot ${ID}: refusing gadgets.example.com: its CRD is neither in the snapshot nor in the cluster; crd-backup restores only custom resources, and nothing was written`,
    );
  });
});

describe("aggregatedBy", () => {
  /** A client whose every request gets `answer`: a body, or a status to fail with. */
  const client = (answer: object | number, paths: string[] = []) =>
    ({
      request: async ({ path }: { path: string }) => {
        paths.push(path);
        if (typeof answer === "number") throw new KubeApiError(answer, "no", { method: "GET", path });
        return { text: JSON.stringify(answer) };
      },
    }) as unknown as KubeClient;

  it("names the Service an APIService routes the group-version to", async () => {
    const paths: string[] = [];
    const api = { spec: { group: "custom.example.com", service: { namespace: "ops", name: "api" } } };
    expect(await aggregatedBy(client(api, paths), "custom.example.com", "v1")).toBe("ops/api");
    expect(paths).toEqual(["/apis/apiregistration.k8s.io/v1/apiservices/v1.custom.example.com"]);
  });

  it("none for a local APIService (a CRD's), none there, or one it may not read", async () => {
    expect(
      await aggregatedBy(client({ spec: { group: "example.com" } }), "example.com", "v1"),
    ).toBeUndefined();
    expect(await aggregatedBy(client(404), "example.com", "v1")).toBeUndefined();
    expect(await aggregatedBy(client(403), "example.com", "v1")).toBeUndefined();
  });

  it("any other failure ends the plan", async () => {
    await expect(aggregatedBy(client(500), "example.com", "v1")).rejects.toBeInstanceOf(KubeApiError);
  });
});

describe("refuseAggregated", () => {
  it("refuses a resource an APIService routes to a Service, naming both", () => {
    const e = thrown(() =>
      refuseAggregated(ID, [
        { group: "example.com", version: "v1", plural: "widgets" },
        { group: "custom.example.com", version: "v1", plural: "foos", aggregatedBy: "ops/api\u001b" },
      ]),
    );
    expect(e.message).toBe(
      `snapshot ${ID}: refusing foos.custom.example.com: the cluster serves custom.example.com/v1 through an aggregated API server (service ops/api\\u001b), not a CRD; crd-backup restores only custom resources, and nothing was written`,
    );
  });
});

describe("conversion webhooks", () => {
  const crd = (conversion: unknown) => ({ spec: { conversion } }) as never;

  it("none for the None strategy or no conversion at all", () => {
    expect(conversionWebhook(crd({ strategy: "None" }))).toBeUndefined();
    expect(conversionWebhook({ spec: {} })).toBeUndefined();
  });

  it("a service, with the API server's default port", () => {
    const w = conversionWebhook(
      crd({
        strategy: "Webhook",
        webhook: { clientConfig: { service: { namespace: "ops", name: "conv", path: "/convert" } } },
      }),
    );
    expect(w).toEqual({ service: { namespace: "ops", name: "conv", path: "/convert", port: 443 } });
    expect(webhookTarget(w!)).toBe("service ops/conv:443/convert");
  });

  it("a URL, shown on one line whatever it holds", () => {
    const w = conversionWebhook(
      crd({
        strategy: "Webhook",
        webhook: { clientConfig: { url: "https://evil.example/\u001b[2J\nx\u202e" } },
      }),
    );
    expect(webhookTarget(w!)).toBe("URL https://evil.example/\\u001b[2J\\u000ax\\u202e");
  });

  it("says so when the webhook names neither", () => {
    expect(webhookTarget(conversionWebhook(crd({ strategy: "Webhook" }))!)).toMatch(/no service or URL/);
  });
});
