import { describe, expect, it } from "vitest";
import { EntryModifiers } from "../../../src/modifiers/entries.ts";
import { compileGlob } from "../../../src/modifiers/glob.ts";
import { parseModifiers } from "../../../src/modifiers/parse.ts";
import { formatPointer, parsePointer } from "../../../src/modifiers/pointer.ts";

const crd = {
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
                  ports: {
                    type: "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};

const ref = { group: "example.com", version: "v1", plural: "services", namespace: "a", name: "web" };
const body = (ports: object[]) =>
  Buffer.from(
    JSON.stringify({
      apiVersion: "example.com/v1",
      kind: "Service",
      metadata: { name: "web", namespace: "a" },
      spec: { ports },
    }),
  );

describe("EntryModifiers", () => {
  const rules = parseModifiers(
    "m.yaml",
    `version: v1
resourceModifierRules:
- conditions: {groupResource: services.example.com, namespaces: [a]}
  strategicPatches:
  - patchData: '{"spec": {"ports": [{"name": "https", "port": 8443}]}}'
`,
  );

  it("merges by the schema of the CRD it was shown, for the stored version", () => {
    const m = new EntryModifiers({ files: ["m.yaml"], rules });
    m.noteCrd("services.example.com", Buffer.from(JSON.stringify(crd)));
    const r = m.modify(
      ref,
      body([
        { name: "http", port: 80 },
        { name: "https", port: 443 },
      ]),
    );
    expect(r.kind === "patched" && r.object["spec"]).toEqual({
      ports: [
        { name: "http", port: 80 },
        { name: "https", port: 8443 },
      ],
    });
  });

  it("without the CRD's schema, lists are atomic", () => {
    const m = new EntryModifiers({ files: ["m.yaml"], rules });
    const r = m.modify(ref, body([{ name: "http", port: 80 }]));
    expect(r.kind === "patched" && r.object["spec"]).toEqual({ ports: [{ name: "https", port: 8443 }] });
  });

  it("does not read a body no rule can apply to", () => {
    const m = new EntryModifiers({ files: ["m.yaml"], rules });
    expect(m.modify({ ...ref, namespace: "b" }, Buffer.from("not json"))).toEqual({ kind: "unmatched" });
    expect(m.modify({ ...ref, plural: "routes" }, Buffer.from("not json"))).toEqual({ kind: "unmatched" });
  });
});

describe("globs and pointers", () => {
  it("globs separate parts like Velero's groupResource", () => {
    const g = (glob: string, s: string) => (compileGlob(glob, ".") as RegExp).test(s);
    expect(g("*.cert-manager.io", "certificates.cert-manager.io")).toBe(true);
    expect(g("*", "certificates.cert-manager.io")).toBe(false);
    expect(g("**", "certificates.cert-manager.io")).toBe(true);
    expect(g("cert?ficates.*.io", "certificates.cert-manager.io")).toBe(true);
    expect(g("[!c]*.cert-manager.io", "certificates.cert-manager.io")).toBe(false);
    expect(compileGlob("{a,b", ".")).toEqual({ error: 'glob "{a,b": "{" is not closed' });
  });
  it("JSON pointers round-trip their escapes", () => {
    expect(parsePointer("/metadata/annotations/example.com~1x~0y")).toEqual([
      "metadata",
      "annotations",
      "example.com/x~y",
    ]);
    expect(formatPointer(["a/b", "c~d"])).toBe("/a~1b/c~0d");
    expect(parsePointer("")).toEqual([]);
    expect(parsePointer("a")).toHaveProperty("error");
  });
});
