import { describe, expect, it } from "vitest";
import { isJsonObject, parseJson, stringifyJson } from "../../../src/json/json.ts";

describe("lossless JSON", () => {
  it("keeps int64 values beyond 2^53 exactly, where JSON.parse would not", () => {
    const text = '{"a":9007199254740993,"b":-9223372036854775808,"c":9223372036854775807}';
    expect(JSON.stringify(JSON.parse(text))).not.toBe(text); // the problem is real
    expect(stringifyJson(parseJson(text))).toBe(text);
  });

  it("round-trips Go's number forms, unicode and nesting byte for byte", () => {
    const text =
      '{"f":0.1,"g":1e+21,"h":-0,"i":1.5e-7,"j":[1,2,3.25],"k":"héllo ✓ \\u0000 \\ud83d\\ude00","l":{"m":null,"n":true}}';
    const back = stringifyJson(parseJson(text));
    expect(parseJson(back)).toEqual(parseJson(text));
    expect(back).toContain('"h":-0');
    expect(back).toContain('"g":1e+21');
  });

  it("leaves ordinary numbers as numbers", () => {
    const v = parseJson('{"n":42,"x":0.5}');
    expect(isJsonObject(v) && v["n"]).toBe(42);
  });
});

describe("lossless JSON's fast path", () => {
  it.each([
    ["a big integer", '{"a":[1,{"b":12345678901234567}]}'],
    ["an exponent", '{"a":1E+2}'],
    ["a trailing zero", '{"a":1.50}'],
    ["a tiny fixed-point number", '{"a":0.0000001}'],
    ["negative zero", '{"a":-0}'],
    ["a long fraction", '{"a":0.30000000000000004}'],
  ])("takes the careful path for %s", (_what, text) => {
    expect(stringifyJson(parseJson(text))).toBe(text);
  });

  it("round-trips a typical object on the plain path", () => {
    const text =
      '{"metadata":{"name":"x","resourceVersion":"123"},"spec":{"n":42,"r":0.25,"neg":-7,"s":"-0 1e5"}}';
    expect(stringifyJson(parseJson(text))).toBe(text);
  });

  it("keeps numbers with 16 or more significant digits across the decimal point exactly", () => {
    for (const n of ["12345678.123456789", "123456.1234567890123", "-1.234567890123456789"]) {
      expect(stringifyJson(parseJson(`{"a":${n}}`))).toBe(`{"a":${n}}`);
    }
  });
});
