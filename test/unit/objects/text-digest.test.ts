import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { entryTextDigest, textDigest } from "../../../src/objects/live.ts";

/** Archive bodies (already cleaned when stored) and bodies cleaning still changes. */
const bodies = [
  '{"apiVersion":"g/v1","kind":"W","metadata":{"name":"a","namespace":"ns","labels":{"x":"y"}},"spec":{"n":9007199254740993}}',
  '{"apiVersion":"g/v1","kind":"W","metadata":{"name":"a"},"spec":{"s":"} ] , \\" "},"status":{"phase":"Ready"}}',
  '{"status":{"phase":"Ready"},"metadata":{"name":"a"},"spec":{}}',
  '{"metadata":{"name":"a","uid":"u-1","resourceVersion":"7"},"spec":{"n":1}}',
  '{ "metadata" : { "name" : "a" } , "spec" : [ 1 , 2 ] }',
  '{"metadata":{},"data":{}}',
];

describe("entryTextDigest: an archive entry's text digest from the hash its reader computed", () => {
  it.each(bodies)("is textDigest, with status and without: %#", (text) => {
    const body = Buffer.from(text);
    const entry = { body, sha256: createHash("sha256").update(body).digest("hex") };
    for (const withStatus of [true, false])
      expect(entryTextDigest(entry, withStatus)).toBe(textDigest(body, withStatus));
  });
});
