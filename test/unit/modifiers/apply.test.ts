import { describe, expect, it } from "vitest";
import type { JsonObject } from "../../../src/json/json.ts";
import { applyModifiers } from "../../../src/modifiers/apply.ts";
import { applyJsonPatch } from "../../../src/modifiers/json-patch.ts";
import { applyMergePatch } from "../../../src/modifiers/merge-patch.ts";
import { parseModifiers } from "../../../src/modifiers/parse.ts";
import { crdVersionSchema } from "../../../src/modifiers/schema.ts";
import { applyStrategicPatch } from "../../../src/modifiers/strategic.ts";

const obj = (): JsonObject => ({
  apiVersion: "example.com/v1",
  kind: "Gateway",
  metadata: { name: "web-1", namespace: "prod", labels: { app: "web", tier: "front" } },
  spec: {
    host: "shop.old.example.com",
    servers: [
      { port: 80, protocol: "HTTP", hosts: ["a.old.example.com"] },
      { port: 443, protocol: "HTTPS", hosts: ["b.old.example.com"] },
    ],
    tags: ["x", "y"],
    args: ["--a", "--b"],
  },
  status: { phase: "Ready" },
});

const schema = crdVersionSchema(
  {
    spec: {
      versions: [
        {
          name: "v1",
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  properties: {
                    servers: {
                      type: "array",
                      "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["port", "protocol"],
                      items: {
                        type: "object",
                        properties: { hosts: { type: "array", "x-kubernetes-list-type": "set" } },
                      },
                    },
                    tags: { type: "array", "x-kubernetes-list-type": "set" },
                    args: { type: "array" },
                  },
                },
              },
            },
          },
        },
      ],
    },
  },
  "v1",
);

const id = { groupResource: "gateways.example.com", namespace: "prod", name: "web-1" };
const rules = (body: string, version = "v1") =>
  parseModifiers("m.yaml", `version: ${version}\nresourceModifierRules:\n${body}`);

describe("JSON Patch (RFC 6902)", () => {
  const apply = (ops: object[]) => applyJsonPatch({ a: { b: [1, 2] }, c: "x" }, ops as never);
  it("adds, removes, replaces, moves, copies and tests", () => {
    expect(apply([{ op: "add", path: ["a", "b", "-"], value: 3 }])).toEqual({ a: { b: [1, 2, 3] }, c: "x" });
    expect(apply([{ op: "add", path: ["a", "b", "0"], value: 0 }])).toEqual({ a: { b: [0, 1, 2] }, c: "x" });
    expect(apply([{ op: "remove", path: ["a", "b", "1"] }])).toEqual({ a: { b: [1] }, c: "x" });
    expect(apply([{ op: "replace", path: ["c"], value: "y" }])).toEqual({ a: { b: [1, 2] }, c: "y" });
    expect(apply([{ op: "move", from: ["c"], path: ["a", "c"] }])).toEqual({ a: { b: [1, 2], c: "x" } });
    expect(apply([{ op: "copy", from: ["a", "b"], path: ["d"] }])).toEqual({
      a: { b: [1, 2] },
      c: "x",
      d: [1, 2],
    });
    expect(apply([{ op: "test", path: ["a"], value: { b: [1, 2] } }])).toEqual({ a: { b: [1, 2] }, c: "x" });
  });
  it("fails whole: a failing test, a missing path for replace or remove, an out-of-range index", () => {
    expect(() => apply([{ op: "test", path: ["c"], value: "z" }])).toThrow("test /c: the value differs");
    expect(() => apply([{ op: "replace", path: ["nope"], value: 1 }])).toThrow(
      "replace /nope: the path does not exist",
    );
    expect(() => apply([{ op: "remove", path: ["a", "x"] }])).toThrow("the path does not exist");
    expect(() => apply([{ op: "add", path: ["a", "b", "5"], value: 1 }])).toThrow("out of range");
    expect(() => apply([{ op: "add", path: ["x", "y"], value: 1 }])).toThrow("/x is nothing");
    expect(() => apply([{ op: "move", from: ["a"], path: ["a", "b", "c"] }])).toThrow("into itself");
  });
});

describe("JSON Merge Patch (RFC 7386)", () => {
  it("merges objects, removes with null, replaces lists", () => {
    expect(
      applyMergePatch({ a: "b", c: { d: "e", f: "g" }, l: [1, 2] }, { a: "z", c: { f: null }, l: [3] }),
    ).toEqual({
      a: "z",
      c: { d: "e" },
      l: [3],
    });
  });
});

describe("strategic merge by the CRD schema", () => {
  it("merges a list-type map list by its keys and keeps the other entries", () => {
    const out = applyStrategicPatch(
      obj(),
      { spec: { servers: [{ port: 443, protocol: "HTTPS", tls: { mode: "SIMPLE" } }] } },
      schema,
    );
    expect((out["spec"] as JsonObject)["servers"]).toEqual([
      { port: 80, protocol: "HTTP", hosts: ["a.old.example.com"] },
      { port: 443, protocol: "HTTPS", hosts: ["b.old.example.com"], tls: { mode: "SIMPLE" } },
    ]);
  });
  it("appends new map entries, deletes with $patch: delete, unions sets, replaces atomic lists", () => {
    const out = applyStrategicPatch(
      obj(),
      {
        spec: {
          servers: [
            { port: 80, protocol: "HTTP", $patch: "delete" },
            { port: 8080, protocol: "HTTP" },
            { port: 443, protocol: "HTTPS", hosts: ["c.example.com"] },
          ],
          tags: ["y", "z"],
          args: ["--c"],
        },
      },
      schema,
    );
    const spec = out["spec"] as JsonObject;
    expect(spec["servers"]).toEqual([
      { port: 443, protocol: "HTTPS", hosts: ["b.old.example.com", "c.example.com"] },
      { port: 8080, protocol: "HTTP" },
    ]);
    expect(spec["tags"]).toEqual(["x", "y", "z"]);
    expect(spec["args"]).toEqual(["--c"]);
  });
  it("treats metadata by ObjectMeta's markers: finalizers a set", () => {
    const o = obj();
    (o["metadata"] as JsonObject)["finalizers"] = ["a"];
    const out = applyStrategicPatch(
      o,
      { metadata: { finalizers: ["b"], labels: { tier: null } } },
      undefined,
    );
    expect(out["metadata"]).toEqual({
      name: "web-1",
      namespace: "prod",
      labels: { app: "web" },
      finalizers: ["a", "b"],
    });
  });
  it("replaces lists whose schema it does not know", () => {
    const out = applyStrategicPatch(obj(), { spec: { servers: [{ port: 1, protocol: "X" }] } }, undefined);
    expect((out["spec"] as JsonObject)["servers"]).toEqual([{ port: 1, protocol: "X" }]);
  });
});

describe("applyModifiers", () => {
  it("matches on the stored object and applies every matching rule in file order", () => {
    const set = rules(`- conditions:
    groupResource: "*.example.com"
    namespaces: [prod]
    resourceNameRegex: "^web-"
    labelSelector:
      matchLabels: {app: web}
      matchExpressions:
      - {key: tier, operator: In, values: [front, back]}
      - {key: legacy, operator: DoesNotExist}
    matches:
    - {path: /spec/servers/0/port, value: "80"}
  patches:
  - {operation: replace, path: /metadata/labels/app, value: shop}
- conditions:
    groupResource: gateways.example.com
    labelSelector: {matchLabels: {app: web}}
  mergePatches:
  - patchData: '{"spec": {"host": "shop.new.example.com"}}'
- conditions:
    groupResource: "*.other.com"
  patches:
  - {operation: remove, path: /spec}
`);
    const stored = obj();
    const result = applyModifiers(set, id, stored, schema);
    expect(result.kind).toBe("patched");
    if (result.kind !== "patched") return;
    expect(result.rules).toEqual([0, 1]); // rule 1 still matches: conditions see the stored labels
    expect(result.object["spec"]).toMatchObject({ host: "shop.new.example.com" });
    expect(result.diff).toEqual([
      { path: ".metadata.labels.app", op: "changed" },
      { path: ".spec.host", op: "changed" },
    ]);
    expect(stored).toEqual(obj()); // pure
  });

  it("does not match on another namespace, name, label or value", () => {
    for (const cond of [
      "namespaces: [staging]",
      'resourceNameRegex: "^api-"',
      "labelSelector: {matchLabels: {app: api}}",
      "labelSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [front]}]}",
      'matches: [{path: /spec/host, value: "x"}]',
      "matches: [{path: /spec/missing, value: x}]",
      'groupResource: "*.example.org"',
    ]) {
      const set = rules(
        `- conditions:\n    ${cond.startsWith("groupResource") ? "" : "groupResource: gateways.example.com\n    "}${cond}\n  patches: [{operation: remove, path: /spec}]\n`,
      );
      expect(applyModifiers(set, id, obj(), schema).kind, cond).toBe("unmatched");
    }
  });

  it("groupResource globs as Velero's: * stays within a part, ** crosses parts", () => {
    const kind = (glob: string) =>
      applyModifiers(
        rules(
          `- conditions: {groupResource: "${glob}"}\n  patches: [{operation: add, path: /x, value: "1"}]\n`,
        ),
        id,
        obj(),
        schema,
      ).kind;
    expect(kind("*.example.com")).toBe("patched");
    expect(kind("gateways.*.com")).toBe("patched");
    expect(kind("*")).toBe("unmatched");
    expect(kind("**")).toBe("patched");
    expect(kind("{gateways,routes}.example.com")).toBe("patched");
  });

  it("a failing rule fails the object with the rule's index and reason", () => {
    const body = `- conditions: {groupResource: gateways.example.com}
  patches: [{operation: add, path: /x, value: "1"}]
- conditions: {groupResource: gateways.example.com}
  patches:
  - {operation: test, path: /spec/host, value: other}
  - {operation: replace, path: /spec/host, value: x}
- conditions: {groupResource: gateways.example.com}
  patches: [{operation: replace, path: /spec/nope, value: x}]
`;
    // crd-backup.io/v1: a test that does not hold fails the object
    expect(applyModifiers(rules(body, "crd-backup.io/v1"), id, obj(), schema)).toEqual({
      kind: "failed",
      rules: [0, 1],
      rule: 1,
      reason: "rule 1 (m.yaml:5): test /spec/host: the value differs",
    });
    // Velero's v1: the rule is skipped, as Velero documents; a replace of a missing path still fails
    expect(applyModifiers(rules(body), id, obj(), schema)).toEqual({
      kind: "failed",
      rules: [0, 2],
      rule: 2,
      reason: "rule 2 (m.yaml:9): replace /spec/nope: the path does not exist",
    });
    const skipped = applyModifiers(
      parseModifiers(
        "m.yaml",
        `version: v1\nresourceModifierRules:\n${body.split("- conditions").slice(0, 3).join("- conditions")}`,
      ),
      id,
      obj(),
      schema,
    );
    expect(skipped).toMatchObject({
      kind: "patched",
      rules: [0],
      skipped: [1],
      diff: [{ path: ".x", op: "added" }],
    });
  });

  it("refuses a patch that changes the namespace, kind or apiVersion", () => {
    const set = rules(`- conditions: {groupResource: gateways.example.com}
  patches: [{operation: replace, path: /metadata/namespace, value: other}]
`);
    const r = applyModifiers(set, id, obj(), schema);
    expect(r.kind === "failed" && r.reason).toContain("changes metadata.namespace");
  });

  it("replaceRegex at a path, across globbed paths, and drop", () => {
    const set = rules(
      `- conditions: {groupResource: gateways.example.com}
  replaceRegex:
  - paths: ["/spec/**"]
    pattern: '(\\w+)\\.old\\.example\\.com'
    replacement: '$1.new.example.com'
  - path: /metadata/labels
    pattern: '^front$'
    replacement: edge
`,
      "crd-backup.io/v1",
    );
    const r = applyModifiers(set, id, obj(), schema);
    if (r.kind !== "patched") throw new Error(r.kind);
    expect(r.object["spec"]).toMatchObject({
      host: "shop.new.example.com",
      servers: [{ hosts: ["a.new.example.com"] }, { hosts: ["b.new.example.com"] }],
    });
    expect((r.object["metadata"] as JsonObject)["labels"]).toEqual({ app: "web", tier: "edge" });
    expect(r.diff.map((d) => d.path)).toEqual([
      ".metadata.labels.tier",
      ".spec.host",
      ".spec.servers[0].hosts[0]",
      ".spec.servers[1].hosts[0]",
    ]);
    const missing = rules(
      `- conditions: {groupResource: gateways.example.com}\n  replaceRegex: [{path: /spec/nope, pattern: a, replacement: b}]\n`,
      "crd-backup.io/v1",
    );
    expect(applyModifiers(missing, id, obj(), schema).kind).toBe("failed");
    const drop = rules(
      `- conditions: {groupResource: gateways.example.com}\n  patches: [{operation: add, path: /x, value: "1"}]\n- conditions: {groupResource: "*.example.com"}\n  drop: true\n`,
      "crd-backup.io/v1",
    );
    expect(applyModifiers(drop, id, obj(), schema)).toEqual({ kind: "dropped", rules: [0, 1], rule: 1 });
  });

  it("a status patch changes status", () => {
    const set = rules(`- conditions: {groupResource: gateways.example.com}
  patches: [{operation: replace, path: /status/phase, value: Restored}]
`);
    const r = applyModifiers(set, id, obj(), schema);
    expect(r.kind === "patched" && r.object["status"]).toEqual({ phase: "Restored" });
  });
});
