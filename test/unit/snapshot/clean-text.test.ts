import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { arrayElements, objectMembers } from "../../../src/kube/json-scan.ts";
import { parseJson, stringifyJson, type JsonObject } from "../../../src/kube/json.ts";
import { cleanObject } from "../../../src/snapshot/clean.ts";
import { cleanObjectText } from "../../../src/snapshot/clean-text.ts";

const served = [
  '{"apiVersion":"g/v1","kind":"W","metadata":{"creationTimestamp":"2026-01-01T00:00:00Z","generation":3,"managedFields":[{"manager":"m","fieldsV1":{"f:spec":{}}}],"name":"a","namespace":"ns","resourceVersion":"42","uid":"u-1","labels":{"x":"y"},"finalizers":["f"],"ownerReferences":[{"kind":"P","name":"p","uid":"u-0"}]},"spec":{"n":9007199254740993,"m":-9223372036854775808,"f":0.1,"s":"quote \\" brace } bracket ] \\\\","e":"\\u003c\\u0026\\u003e"},"status":{"phase":"Ready"}}',
  '{ "kind" : "W" , "metadata" : { "name" : "b" , "uid" : "u-2" , "deletionTimestamp" : "x", "deletionGracePeriodSeconds": 30, "selfLink": "/x" } , "spec" : [ 1 , { "a" : [ ] } , "}" ] }',
  '{"metadata":{"uid":"only-server-owned","resourceVersion":"1"}}',
  '{"metadata":{},"data":{}}',
  // keys spelled with escapes are the same keys; owners without a uid are kept for the index to refuse
  '{"apiVersion":"g/v1","\\u006bind":"W","metadata":{"n\\u0061me":"c","\\u0075id":"u-3","ownerReferences":[{"name":"p"},{"uid":"u-0"}]},"spec":{"metadata":{"uid":"not-me"}}}',
];

describe("cleaning objects as text", () => {
  it.each(served)("agrees with the parse-based clean, and keeps every other byte: %#", (text) => {
    const fromText = cleanObjectText(text, 0);
    const parsed = parseJson(text) as JsonObject;
    const { object, uid } = cleanObject(parsed);
    // the same object, value for value (raw numbers compared as text)...
    expect(stringifyJson(parseJson(fromText.body))).toBe(stringifyJson(object));
    expect(fromText.uid).toBe(uid);
    expect(fromText.name).toBe((parsed["metadata"] as JsonObject)["name"] ?? "");
    // ...and the fields the archive index takes from the body are the parsed body's
    const meta = (parsed["metadata"] ?? {}) as JsonObject;
    expect(fromText.apiVersion).toBe(parsed["apiVersion"]);
    expect(fromText.kind).toBe(parsed["kind"]);
    expect(fromText.namespace).toBe(meta["namespace"]);
    expect(fromText.ownerReferences).toEqual(
      (meta["ownerReferences"] as JsonObject[] | undefined)?.map((o) => ({ uid: o["uid"] })),
    );
    // ...and no byte of what was kept was rewritten (escapes, number text, spacing inside values)
    for (const m of objectMembers(fromText.body, 0).members)
      if (m.key !== "metadata") expect(text).toContain(fromText.body.slice(m.start, m.end));
  });

  it("keeps int64 text and escape sequences exactly as served", () => {
    const body = cleanObjectText(served[0]!, 0).body;
    expect(body).toContain('"n":9007199254740993,"m":-9223372036854775808');
    expect(body).toContain('"e":"\\u003c\\u0026\\u003e"');
    expect(body).not.toMatch(/managedFields|resourceVersion|creationTimestamp|generation|"uid":"u-1"/);
    expect(body).toContain('"uid":"u-0"'); // an owner's uid is not server-owned metadata
  });

  it("reads name, namespace, uid, kind and owners' uids, wherever they are and however spelled", () => {
    const c = cleanObjectText(served[4]!, 0);
    expect(c).toMatchObject({ name: "c", uid: "u-3", apiVersion: "g/v1", kind: "W" });
    expect(c.ownerReferences).toEqual([{ uid: undefined }, { uid: "u-0" }]);
    expect(c.body).toBe(
      '{"apiVersion":"g/v1","\\u006bind":"W","metadata":{"n\\u0061me":"c","ownerReferences":[{"name":"p"},{"uid":"u-0"}]},"spec":{"metadata":{"uid":"not-me"}}}',
    );
  });

  it("drops status on request", () => {
    expect(cleanObjectText(served[0]!, 0, { dropStatus: true }).body).not.toContain("status");
    expect(cleanObjectText(served[0]!, 0).body).toContain('"status":{"phase":"Ready"}');
  });

  it("splits a list's items without parsing them", () => {
    const list = `{"apiVersion":"v1","items":[${served.join(",")}],"kind":"List","metadata":{"continue":"c"}}`;
    const start = list.indexOf("[");
    const spans = arrayElements(list, start);
    expect(spans.map(([a, b]) => list.slice(a, b))).toEqual(served);
  });

  it.each(['{"a":1', '{"a" 1}', '{"a":"unterminated}', "[1,2", '{"a":1,}', "{a:1}"])(
    "refuses malformed JSON: %s",
    (text) => {
      expect(() => (text.startsWith("[") ? arrayElements(text, 0) : objectMembers(text, 0))).toThrow(
        CrdBackupError,
      );
    },
  );
});
