import { describe, expect, it } from "vitest";
import { diffJson } from "../../../src/json/diff.ts";
import { parseJson, type JsonObject, type JsonValue } from "../../../src/json/json.ts";

const widget = (): JsonObject =>
  parseJson(
    JSON.stringify({
      apiVersion: "g/v1",
      kind: "Widget",
      metadata: { name: "w", labels: { app: "web", "app.kubernetes.io/name": "web" } },
      spec: {
        replicas: 2,
        ports: [{ port: 80 }, { port: 443 }],
        tags: ["a", "b"],
        nested: { deep: { deeper: { value: "x" } } },
        optional: null,
      },
    }),
  ) as JsonObject;

/** A deep copy of `v` with `edit` applied to it. */
function edited(v: JsonObject, edit: (o: JsonObject & { spec: JsonObject }) => void): JsonObject {
  const copy = structuredClone(v) as JsonObject & { spec: JsonObject };
  edit(copy);
  return copy;
}

describe("diffJson: field-level differences, paths only", () => {
  it("finds nothing between equal documents, shared or copied", () => {
    const w = widget();
    expect(diffJson(w, w)).toEqual([]);
    expect(diffJson(w, widget())).toEqual([]);
    expect(diffJson(undefined, undefined)).toEqual([]);
    expect(diffJson(null, null)).toEqual([]);
    expect(diffJson([], [])).toEqual([]);
  });

  it("names a changed leaf by its path, objects by .key and lists by [index]", () => {
    const w = widget();
    expect(
      diffJson(
        w,
        edited(w, (o) => void (o.spec["replicas"] = 3)),
      ),
    ).toEqual([{ path: ".spec.replicas", op: "changed" }]);
    expect(
      diffJson(
        w,
        edited(w, (o) => void ((o.spec["ports"] as JsonObject[])[1]!["port"] = 8443)),
      ),
    ).toEqual([{ path: ".spec.ports[1].port", op: "changed" }]);
    expect(
      diffJson(
        w,
        edited(w, (o) => void (((o.spec["nested"] as JsonObject)["deep"] as JsonObject)["deeper"] = {})),
      ),
    ).toEqual([{ path: ".spec.nested.deep.deeper.value", op: "removed" }]);
  });

  it("quotes keys that are not identifiers, the way JSON spells them", () => {
    const w = widget();
    const labels = (o: JsonObject) => (o["metadata"] as JsonObject)["labels"] as JsonObject;
    expect(
      diffJson(
        w,
        edited(w, (o) => void (labels(o)["app.kubernetes.io/name"] = "api")),
      ),
    ).toEqual([{ path: '.metadata.labels["app.kubernetes.io/name"]', op: "changed" }]);
    expect(
      diffJson(
        { m: {} },
        { m: { 'say "hi"': 1, "": 2, "1st": 3, _ok: 4, camelCase9: 5, "a-b": 6, ünï: 7, "a.b": 8 } },
      ).map((c) => c.path),
    ).toEqual([
      '.m["say \\"hi\\""]',
      '.m[""]',
      '.m["1st"]',
      ".m._ok",
      ".m.camelCase9",
      '.m["a-b"]',
      '.m["ünï"]',
      '.m["a.b"]',
    ]);
  });

  it("says added and removed for members only one side has, null being a value", () => {
    const w = widget();
    const changes = diffJson(
      w,
      edited(w, (o) => {
        delete o.spec["tags"];
        o.spec["paused"] = true;
        o["status"] = { phase: "Ready" };
      }),
    );
    expect(changes).toEqual([
      { path: ".spec.tags", op: "removed" },
      { path: ".spec.paused", op: "added" },
      { path: ".status", op: "added" },
    ]);
    // a member holding null is there: removing it, or giving it a value, is a change
    expect(diffJson({ a: null }, {})).toEqual([{ path: ".a", op: "removed" }]);
    expect(diffJson({}, { a: null })).toEqual([{ path: ".a", op: "added" }]);
    expect(diffJson({ a: null }, { a: 0 })).toEqual([{ path: ".a", op: "changed" }]);
    expect(diffJson({ a: "" }, { a: false })).toEqual([{ path: ".a", op: "changed" }]);
  });

  it("names the whole document '.' when it appears, disappears or is replaced", () => {
    expect(diffJson(undefined, { a: 1 })).toEqual([{ path: ".", op: "added" }]);
    expect(diffJson({ a: 1 }, undefined)).toEqual([{ path: ".", op: "removed" }]);
    expect(diffJson(1, 2)).toEqual([{ path: ".", op: "changed" }]);
    expect(diffJson({ a: 1 }, [1])).toEqual([{ path: ".", op: "changed" }]);
  });

  it("reports a list that changed length as one change, and a list of the same length element by element", () => {
    const w = widget();
    expect(
      diffJson(
        w,
        edited(w, (o) => void (o.spec["tags"] as string[]).push("c")),
      ),
    ).toEqual([{ path: ".spec.tags", op: "changed" }]);
    expect(
      diffJson(
        w,
        edited(w, (o) => void (o.spec["tags"] = ["b", "a"])),
      ),
    ).toEqual([
      { path: ".spec.tags[0]", op: "changed" },
      { path: ".spec.tags[1]", op: "changed" },
    ]);
    // a list that became an object, or an object a string: a change of the member itself
    expect(diffJson({ a: [] }, { a: {} })).toEqual([{ path: ".a", op: "changed" }]);
    expect(diffJson({ a: { b: 1 } }, { a: "b" })).toEqual([{ path: ".a", op: "changed" }]);
  });

  it("compares lossless numbers by their text, and plain numbers by value", () => {
    const a = parseJson('{"n":9007199254740993,"m":-9223372036854775808,"e":1e+21,"f":1.50}');
    const same = parseJson('{"n":9007199254740993,"m":-9223372036854775808,"e":1e+21,"f":1.50}');
    expect(diffJson(a, same)).toEqual([]);
    // one apart beyond 2^53: equal as doubles, different as int64s
    expect(JSON.parse("9007199254740993")).toBe(JSON.parse("9007199254740992"));
    expect(
      diffJson(a, parseJson('{"n":9007199254740992,"m":-9223372036854775808,"e":1e+21,"f":1.50}')),
    ).toEqual([{ path: ".n", op: "changed" }]);
    // a raw number and a plain one printing the same text are the same; different text is not
    expect(diffJson({ e: JSON.rawJSON("1e+21") }, { e: 1e21 })).toEqual([]);
    expect(diffJson({ f: JSON.rawJSON("1.50") }, { f: 1.5 })).toEqual([{ path: ".f", op: "changed" }]);
    expect(diffJson({ n: JSON.rawJSON("12345678901234567890") }, { n: "12345678901234567890" })).toEqual([
      { path: ".n", op: "changed" },
    ]);
    expect(diffJson({ n: 1 }, { n: 1.0 })).toEqual([]);
  });

  it("stops at `limit` changes (20 by default), in the order the walk finds them", () => {
    const from: JsonObject = {};
    const to: JsonObject = {};
    for (let i = 0; i < 30; i++) {
      from[`k${String(i).padStart(2, "0")}`] = i;
      to[`k${String(i).padStart(2, "0")}`] = i + 1;
    }
    const all = Array.from({ length: 30 }, (_, i) => ({
      path: `.k${String(i).padStart(2, "0")}`,
      op: "changed",
    }));
    expect(diffJson(from, to)).toEqual(all.slice(0, 20));
    expect(diffJson(from, to, 3)).toEqual(all.slice(0, 3));
    expect(diffJson(from, to, 100)).toEqual(all);
    expect(diffJson(from, to, 0)).toEqual([]);
    // nested changes count one by one, whatever depth they are at
    const deep = (n: number): JsonValue => ({ list: Array.from({ length: 25 }, (_, i) => ({ v: i + n })) });
    expect(diffJson(deep(0), deep(1), 5).map((c) => c.path)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `.list[${i}].v`),
    );
  });

  it("never includes a value, only where it changed", () => {
    const secret = "s3cr3t-token-value";
    const changes = diffJson(
      { data: { token: "old" }, list: ["x"] },
      { data: { token: secret, [secret.slice(0, 4)]: 1 }, list: [secret] },
    );
    expect(changes).toEqual([
      { path: ".data.token", op: "changed" },
      { path: ".data.s3cr", op: "added" },
      { path: ".list[0]", op: "changed" },
    ]);
    expect(JSON.stringify(changes)).not.toContain(secret);
    for (const c of changes) expect(Object.keys(c).sort()).toEqual(["op", "path"]);
  });

  it("keys named like Object.prototype's members are added and removed like any other", () => {
    const empty = parseJson('{"spec":{}}');
    const withCtor = parseJson('{"spec":{"constructor":"x"}}');
    expect(diffJson(empty, withCtor)).toEqual([{ path: ".spec.constructor", op: "added" }]);
    expect(diffJson(withCtor, empty)).toEqual([{ path: ".spec.constructor", op: "removed" }]);
    const proto = parseJson('{"spec":{"__proto__":{"a":1}}}');
    expect(diffJson(proto, empty)).toEqual([{ path: ".spec.__proto__", op: "removed" }]);
  });
});
