import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { parseModifiers } from "../../../src/modifiers/parse.ts";

const fail = (text: string): string => {
  try {
    parseModifiers("m.yaml", text);
  } catch (e) {
    expect(e).toBeInstanceOf(CrdBackupError);
    expect((e as CrdBackupError).code).toBe("USAGE");
    return (e as Error).message;
  }
  throw new Error("parsed");
};

describe("parseModifiers", () => {
  it("reads Velero's template", () => {
    const rules = parseModifiers(
      "m.yaml",
      `version: v1
resourceModifierRules:
- conditions:
     groupResource: persistentvolumeclaims
     resourceNameRegex: "^mysql.*$"
     namespaces:
     - bar
     - foo
     labelSelector:
        matchLabels:
           foo: bar
  patches:
  - operation: replace
    path: "/spec/storageClassName"
    value: "premium"
  - operation: remove
    path: "/metadata/labels/test"
`,
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]!.source).toBe("m.yaml:3");
    expect(rules[0]!.action).toEqual({
      kind: "patches",
      ops: [
        { op: "replace", path: ["spec", "storageClassName"], value: "premium" },
        { op: "remove", path: ["metadata", "labels", "test"] },
      ],
    });
    expect(rules[0]!.conditions.labelSelector?.matchLabels).toEqual({ foo: "bar" });
  });

  it("reads values as Velero does: JSON text, numbers, booleans, quoted strings", () => {
    const [rule] = parseModifiers(
      "m.yaml",
      `version: v1
resourceModifierRules:
- conditions: {groupResource: "*.example.com"}
  patches:
  - {operation: add, path: /a, value: "{\\"name\\": \\"nginx\\", \\"ports\\": [{\\"containerPort\\": 80}]}"}
  - {operation: add, path: /b, value: "80"}
  - {operation: add, path: /c, value: "true"}
  - {operation: add, path: /d, value: "\\"80\\""}
  - {operation: add, path: /e, value: "null"}
  - {operation: add, path: /f}
`,
    );
    const ops = (rule!.action as { ops: { value: unknown }[] }).ops.map((o) => o.value);
    expect(ops).toEqual([{ name: "nginx", ports: [{ containerPort: 80 }] }, 80, true, "80", null, ""]);
  });

  it("numbers rules across files and reads patchData as YAML or JSON", () => {
    const rules = parseModifiers(
      "m.yaml",
      `version: v1
resourceModifierRules:
- conditions: {groupResource: a.b}
  mergePatches:
  - patchData: |
      {"metadata": {"annotations": {"foo": null}}}
- conditions: {groupResource: a.b}
  strategicPatches:
  - patchData: |
      spec:
        x: 1
`,
      5,
    );
    expect(rules.map((r) => r.index)).toEqual([5, 6]);
    expect(rules[0]!.action).toEqual({
      kind: "mergePatches",
      patches: [{ metadata: { annotations: { foo: null } } }],
    });
    expect(rules[1]!.action).toEqual({ kind: "strategicPatches", patches: [{ spec: { x: 1 } }] });
  });

  it("takes the extensions only under version crd-backup.io/v1", () => {
    const text = (version: string) => `version: ${version}
resourceModifierRules:
- conditions:
    groupResource: "*.example.com"
  replaceRegex:
  - paths: ["/**"]
    pattern: 'old\\.example\\.com'
    replacement: new.example.com
- conditions:
    groupResource: backups.example.com
  drop: true
`;
    expect(fail(text("v1"))).toBe(
      'm.yaml:5: rule 0: unknown key "replaceRegex": it is a crd-backup extension; declare version: crd-backup.io/v1',
    );
    const rules = parseModifiers("m.yaml", text("crd-backup.io/v1"));
    expect(rules.map((r) => r.action.kind)).toEqual(["replaceRegex", "drop"]);
  });

  it.each([
    ["wrong version", "version: v2\nresourceModifierRules: []\n", 'm.yaml:1: unsupported version "v2"'],
    [
      "unknown key",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  pathes: []\n",
      'm.yaml:4: rule 0: unknown key "pathes"',
    ],
    [
      "bad regex",
      "version: v1\nresourceModifierRules:\n- conditions:\n    groupResource: a.b\n    resourceNameRegex: '^(a'\n  patches: [{operation: remove, path: /x}]\n",
      "m.yaml:5: rule 0.conditions.resourceNameRegex: bad regular expression",
    ],
    [
      "bad JSON pointer",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  patches:\n  - operation: remove\n    path: spec/x\n",
      'm.yaml:6: rule 0.patches[0].path: "spec/x" is not a JSON pointer',
    ],
    [
      "bad pointer escape",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  patches:\n  - {operation: remove, path: /a~2b}\n",
      'm.yaml:5: rule 0.patches[0].path: "/a~2b" is not a JSON pointer',
    ],
    [
      "two patch kinds",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  patches: [{operation: remove, path: /x}]\n  mergePatches: [{patchData: '{}'}]\n",
      "m.yaml:3: rule 0: give exactly one of patches, mergePatches, strategicPatches (found patches, mergePatches)",
    ],
    [
      "no groupResource",
      "version: v1\nresourceModifierRules:\n- conditions: {namespaces: [a]}\n  patches: [{operation: remove, path: /x}]\n",
      "m.yaml:3: rule 0.conditions: groupResource is required",
    ],
    [
      "unsupported operation",
      "version: v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  patches: [{operation: upsert, path: /x}]\n",
      'unsupported operation "upsert"',
    ],
    [
      "empty rules",
      "version: v1\nresourceModifierRules: []\n",
      "m.yaml:2: resourceModifierRules cannot be empty",
    ],
    ["not YAML", "version: v1\n  resourceModifierRules: [\n", "m.yaml:"],
    [
      "bad replaceRegex pattern",
      "version: crd-backup.io/v1\nresourceModifierRules:\n- conditions: {groupResource: a.b}\n  replaceRegex:\n  - path: /spec\n    pattern: '[a-'\n    replacement: x\n",
      "m.yaml:6: rule 0.replaceRegex[0].pattern: bad regular expression",
    ],
    [
      "bad label operator",
      "version: v1\nresourceModifierRules:\n- conditions:\n    groupResource: a.b\n    labelSelector:\n      matchExpressions:\n      - {key: a, operator: Has}\n  patches: [{operation: remove, path: /x}]\n",
      'operator "Has" is not In, NotIn, Exists or DoesNotExist',
    ],
  ])("refuses a file with a %s, naming the line", (_what, text, message) => {
    const m = fail(text);
    expect(m).toContain(message);
    expect(m.split("\n")).toHaveLength(1);
  });
});
