import { describe, expect, it } from "vitest";
import { parseJson, type JsonValue } from "../../../src/json/json.ts";
import { parseJsonMapped } from "../../../src/json/numbers-mapped.ts";

/** The tree with every RawJSON made visible, so a number kept as text differs from a plain one. */
function shape(v: JsonValue): unknown {
  if (JSON.isRawJSON(v)) return { $raw: v.rawJSON };
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === "object") return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v;
}

const same = (text: string) => expect(shape(parseJsonMapped(text))).toEqual(shape(parseJson(text)));

describe("parseJsonMapped builds parseJson's tree", () => {
  it.each([
    ["the bench's body", '{"spec":{"version":3,"big":9223372036854775807,"pad":"xx"},"status":{"phase":7}}'],
    [
      "Go's number forms",
      '{"f":0.1,"g":1e+21,"h":-0,"i":1.5e-7,"j":[1,2,3.25,1.50,1E2],"k":12345678.123456789}',
    ],
    [
      "numbers inside strings",
      '{"a":"9223372036854775807 1e5 -0","b":"\\"1e5\\"","c":1e5,"d":"x\\\\","e":-0}',
    ],
    ["escaped quotes and backslashes", '{"a\\"b":"c\\\\\\"d 1e3","n":[1e3,"]",{"x":"\\\\"}, 2.50]}'],
    ["whitespace", ' { "a" : [ 1.0 , 2 ] ,\n "b" : { "c" :\t1e-7 } } '],
    ["integer-like keys (JavaScript reorders them)", '{"b":1.0,"10":2,"1":3e0,"a":[4.0]}'],
    ["a key given twice", '{"a":"s","b":2.0,"a":3e0}'],
    ["a duplicate holding numbers", '{"a":{"x":1.0},"b":2,"a":3.0}'],
    ["an escaped key", '{"\\u0031":1.0,"b":2e0}'],
    ["__proto__", '{"__proto__":1.0,"a":{"__proto__":[2e0]}}'],
    ["no risky number", '{"a":1,"b":[0.5,-2],"c":null,"d":true}'],
    ["scalars", "1.0"],
    ["an array at the top", "[1e400, -0.0, 0]"],
  ])("%s", (_what, text) => same(text));

  it("matches on random objects with risky numbers in values, keys and strings", () => {
    const numbers = [
      "1",
      "1.0",
      "1e2",
      "-0",
      "0",
      "9007199254740993",
      "1.25",
      "12345678901234567890",
      "-3.50",
    ];
    let seed = 7;
    const pick = <T>(a: T[]) => a[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % a.length]!;
    const value = (depth: number): string => {
      const kind = pick([0, 1, 2, 3, 4]);
      if (depth > 3 || kind < 2) return pick(numbers);
      if (kind === 2) return JSON.stringify(`${pick(numbers)} "${pick(numbers)}\\`);
      const n = pick([0, 1, 2, 3]);
      if (kind === 3) return `[${Array.from({ length: n }, () => value(depth + 1)).join(",")}]`;
      const keys = Array.from({ length: n }, () => pick(["a", "b", "1", "0", "x y", "1e2", "a"]));
      return `{${keys.map((k) => `${JSON.stringify(k)}:${value(depth + 1)}`).join(",")}}`;
    };
    for (let i = 0; i < 2000; i++) same(value(0));
  });
});
