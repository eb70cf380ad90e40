import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { arrayElements, objectMembers } from "../../../src/json/scan.ts";
import { parseJson, stringifyJson, type JsonObject } from "../../../src/json/json.ts";
import { cleanObject } from "../../../src/objects/clean.ts";
import { cleanObjectText } from "../../../src/objects/clean-text.ts";

const served = [
  '{"apiVersion":"g/v1","kind":"W","metadata":{"creationTimestamp":"2026-01-01T00:00:00Z","generation":3,"managedFields":[{"manager":"m","fieldsV1":{"f:spec":{}}}],"name":"a","namespace":"ns","resourceVersion":"42","uid":"u-1","labels":{"x":"y"},"finalizers":["f"],"ownerReferences":[{"kind":"P","name":"p","uid":"u-0"}]},"spec":{"n":9007199254740993,"m":-9223372036854775808,"f":0.1,"s":"quote \\" brace } bracket ] \\\\","e":"\\u003c\\u0026\\u003e"},"status":{"phase":"Ready"}}',
  '{ "kind" : "W" , "metadata" : { "name" : "b" , "uid" : "u-2" , "deletionTimestamp" : "x", "deletionGracePeriodSeconds": 30, "selfLink": "/x" } , "spec" : [ 1 , { "a" : [ ] } , "}" ] }',
  '{"metadata":{"uid":"only-server-owned","resourceVersion":"1"}}',
  '{"metadata":{},"data":{}}',
  // keys spelled with escapes are the same keys; owners without a uid are kept for the index to refuse
  '{"apiVersion":"g/v1","\\u006bind":"W","metadata":{"n\\u0061me":"c","\\u0075id":"u-3","ownerReferences":[{"name":"p"},{"uid":"u-0"}]},"spec":{"metadata":{"uid":"not-me"}}}',
];

/** cleanObjectText on the UTF-8 bytes of `text`, with the body as text. */
function clean(text: string, start = 0, options: { dropStatus?: boolean } = {}) {
  const cleaned = cleanObjectText(Buffer.from(text), start, options);
  return { ...cleaned, body: cleaned.body.toBuffer().toString("utf8") };
}

describe("cleaning objects as text", () => {
  it.each(served)("agrees with the parse-based clean, and keeps every other byte: %#", (text) => {
    const fromText = clean(text);
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
    const body = Buffer.from(fromText.body);
    for (const m of objectMembers(body, 0).members)
      if (m.key !== "metadata") expect(text).toContain(body.toString("utf8", m.start, m.end));
  });

  it("keeps int64 text and escape sequences exactly as served", () => {
    const body = clean(served[0]!).body;
    expect(body).toContain('"n":9007199254740993,"m":-9223372036854775808');
    expect(body).toContain('"e":"\\u003c\\u0026\\u003e"');
    expect(body).not.toMatch(/managedFields|resourceVersion|creationTimestamp|generation|"uid":"u-1"/);
    expect(body).toContain('"uid":"u-0"'); // an owner's uid is not server-owned metadata
  });

  it("reads name, namespace, uid, kind and owners' uids, wherever they are and however spelled", () => {
    const c = clean(served[4]!);
    expect(c).toMatchObject({ name: "c", uid: "u-3", apiVersion: "g/v1", kind: "W" });
    expect(c.ownerReferences).toEqual([{ uid: undefined }, { uid: "u-0" }]);
    expect(c.body).toBe(
      '{"apiVersion":"g/v1","\\u006bind":"W","metadata":{"n\\u0061me":"c","ownerReferences":[{"name":"p"},{"uid":"u-0"}]},"spec":{"metadata":{"uid":"not-me"}}}',
    );
  });

  it("scans UTF-8 bytes: multi-byte text, and quotes escaped before and after the short-string loop", () => {
    const long = `${"x".repeat(30)}\\"${"y".repeat(40)}\\\\`; // \" at byte 32, \\ at the end
    const text = `{"apiVersion":"g/v1","kind":"W","metadata":{"name":"名前-é","uid":"u","labels":{"ключ":"😀\\\\"}},"spec":{"s":"${long}","t":"日本語\\"quoted\\""}}`;
    const bytes = Buffer.from(text);
    const c = cleanObjectText(bytes, 0);
    expect(c.name).toBe("名前-é");
    expect(c.end).toBe(bytes.length);
    const body = c.body.toBuffer();
    expect(body.length).toBe(c.body.length);
    expect(JSON.parse(body.toString("utf8"))).toEqual({
      ...JSON.parse(text),
      metadata: { name: "名前-é", labels: { ключ: "😀\\" } },
    });
    // the spec's bytes are the page's bytes
    expect(body.includes(bytes.subarray(bytes.indexOf('"spec"'), bytes.length - 1))).toBe(true);
  });

  it("copies a body that is one span, or many, into place at any offset", () => {
    const text =
      '{"a":1,"metadata":{"resourceVersion":"1","name":"n","uid":"u","labels":{}},"b":[2],"c":{"d":"e"}}';
    const c = cleanObjectText(Buffer.from(text), 0);
    const target = Buffer.alloc(c.body.length + 10, 0x2e);
    c.body.copyTo(target, 5);
    expect(target.toString()).toBe(
      '.....{"a":1,"metadata":{"name":"n","labels":{}},"b":[2],"c":{"d":"e"}}.....',
    );
  });

  it("drops status on request", () => {
    expect(clean(served[0]!, 0, { dropStatus: true }).body).not.toContain("status");
    expect(clean(served[0]!).body).toContain('"status":{"phase":"Ready"}');
  });

  it("splits a list's items without parsing them", () => {
    const list = Buffer.from(
      `{"apiVersion":"v1","items":[${served.join(",")}],"kind":"List","metadata":{"continue":"c"}}`,
    );
    const spans = arrayElements(list, list.indexOf("["));
    expect(spans.map(([a, b]) => list.toString("utf8", a, b))).toEqual(served);
  });

  it.each(['{"a":1', '{"a" 1}', '{"a":"unterminated}', "[1,2", '{"a":1,}', "{a:1}"])(
    "refuses malformed JSON: %s",
    (text) => {
      const bytes = Buffer.from(text);
      expect(() => (text.startsWith("[") ? arrayElements(bytes, 0) : objectMembers(bytes, 0))).toThrow(
        CrdBackupError,
      );
    },
  );
});
