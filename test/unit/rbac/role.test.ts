import { describe, expect, it } from "vitest";
import { buildClusterRole, literalNamespaces, type RoleCrd } from "../../../src/rbac/role.ts";

const CRDS: RoleCrd[] = [
  { group: "b.example.com", plural: "widgets", statusVersions: ["v1"] },
  { group: "a.example.com", plural: "zebras", statusVersions: [] },
  { group: "b.example.com", plural: "gadgets", statusVersions: [] },
  { group: "a.example.com", plural: "apples", statusVersions: ["v1", "v2"] },
];

describe("buildClusterRole", () => {
  it("snapshot: get/list on CRDs, get on namespaces, get/list per group with sorted resources", () => {
    const role = buildClusterRole(CRDS, { name: "r", mode: "snapshot" });
    expect(role.metadata.name).toBe("r");
    expect(role.rules).toEqual([
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "list"],
      },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get"] },
      { apiGroups: ["a.example.com"], resources: ["apples", "zebras"], verbs: ["get", "list"] },
      { apiGroups: ["b.example.com"], resources: ["gadgets", "widgets"], verbs: ["get", "list"] },
    ]);
  });

  it("restore: creates CRDs and namespaces, writes objects, patches only the /status subresources that exist", () => {
    const role = buildClusterRole(CRDS, { name: "r", mode: "restore" });
    expect(role.rules).toEqual([
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["create", "get", "list"],
      },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["create", "get"] },
      {
        apiGroups: ["a.example.com"],
        resources: ["apples", "zebras"],
        verbs: ["create", "get", "list", "patch"],
      },
      { apiGroups: ["a.example.com"], resources: ["apples/status"], verbs: ["patch"] },
      {
        apiGroups: ["b.example.com"],
        resources: ["gadgets", "widgets"],
        verbs: ["create", "get", "list", "patch"],
      },
      { apiGroups: ["b.example.com"], resources: ["widgets/status"], verbs: ["patch"] },
    ]);
    // nothing a restore never does
    const verbs = new Set(role.rules.flatMap((r) => r.verbs));
    for (const v of ["update", "delete", "deletecollection", "escalate", "bind", "*"])
      expect(verbs.has(v)).toBe(false);
  });

  it("is the same whatever order the CRDs come in, and holds no wildcard", () => {
    const a = buildClusterRole(CRDS, { name: "r", mode: "restore" });
    const b = buildClusterRole([...CRDS].reverse(), { name: "r", mode: "restore" });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(a)).not.toContain("*");
  });

  it("limits get on namespaces to the included ones and kube-system when they are named literally", () => {
    const role = buildClusterRole([], { name: "r", mode: "snapshot", namespaces: ["prod", "apps"] });
    expect(role.rules[1]).toEqual({
      apiGroups: [""],
      resources: ["namespaces"],
      verbs: ["get"],
      resourceNames: ["apps", "kube-system", "prod"],
    });
    expect(role.rules).toHaveLength(2);
  });

  it("literalNamespaces: only a list without globs names every namespace a snapshot can read", () => {
    expect(literalNamespaces([])).toBeUndefined();
    expect(literalNamespaces(["prod", "team-*"])).toBeUndefined();
    expect(literalNamespaces(["prod", "ap?"])).toBeUndefined();
    expect(literalNamespaces(["prod", "apps"])).toEqual(["prod", "apps"]);
  });
});
