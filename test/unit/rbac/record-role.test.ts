import { describe, expect, it } from "vitest";
import { buildClusterRole } from "../../../src/rbac/role.ts";

describe("the record ClusterRole", () => {
  it("lists and watches CRDs, namespaces and each resource, gets namespaces for the base, and writes nothing", () => {
    const role = buildClusterRole(
      [
        { group: "b.example.com", plural: "gadgets", statusVersions: ["v1"] },
        { group: "a.example.com", plural: "widgets", statusVersions: [] },
        { group: "a.example.com", plural: "cogs", statusVersions: [] },
      ],
      { name: "crd-backup-record", mode: "record", namespaces: ["ignored"] },
    );
    expect(role.metadata).toEqual({
      name: "crd-backup-record",
      labels: { "app.kubernetes.io/name": "crd-backup", "app.kubernetes.io/component": "record" },
    });
    expect(role.rules).toEqual([
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["list", "watch"],
      },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["a.example.com"], resources: ["cogs", "widgets"], verbs: ["list", "watch"] },
      { apiGroups: ["b.example.com"], resources: ["gadgets"], verbs: ["list", "watch"] },
    ]);
  });
});
