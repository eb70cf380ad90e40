import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { MAX_DEPTH, doubleQuoted, isPlainSafe, toYaml } from "../../../src/export/yaml.ts";
import { parseJson, type JsonValue } from "../../../src/json/json.ts";
import { jsonText, readYaml } from "./read-yaml.ts";

/** The value, written as YAML and read back by an independent parser under both YAML versions, is the same JSON. */
function expectRoundTrip(value: JsonValue): string {
  const yaml = toYaml(value);
  for (const version of ["1.2", "1.1"] as const) {
    let back: JsonValue;
    try {
      back = readYaml(yaml, version);
    } catch (e) {
      throw new Error(`YAML ${version} could not read back:\n${yaml}\n${(e as Error).message}`, { cause: e });
    }
    expect(jsonText(back), `YAML ${version}:\n${yaml}`).toBe(jsonText(value));
  }
  return yaml;
}

/** Strings YAML (1.1, 1.2, or kubectl's reader) would read as something else, or mangle. */
const TRICKY = [
  "",
  " ",
  "  leading",
  "trailing ",
  "yes",
  "No",
  "ON",
  "off",
  "y",
  "N",
  "true",
  "False",
  "null",
  "Null",
  "~",
  "0x1F",
  "0o17",
  "0b101",
  "0755",
  "1e3",
  "1.0e3",
  "1E3",
  "+1",
  "-1",
  ".5",
  "1_000",
  "12:30",
  "1:20:30",
  "2001-12-14",
  "2001-12-14t21:59:43.10-05:00",
  ".inf",
  "-.Inf",
  ".NaN",
  "nan",
  "inf",
  "9007199254740993",
  "<<",
  "=",
  "-",
  "- item",
  "? key",
  ": value",
  "key: value",
  "key:",
  "a #comment",
  "#comment",
  "a#b",
  "---",
  "...",
  "--- x",
  "&anchor",
  "*alias",
  "!tag",
  "!!str",
  "%YAML",
  "@at",
  "`tick",
  "'single'",
  '"double"',
  "{a: 1}",
  "[1, 2]",
  "a, b",
  "|",
  ">",
  "|-\n x",
  "tab\there",
  "\ttab first",
  "tab last\t",
  "multi\nline",
  "multi\nline\n",
  "multi\nline\n\n\n",
  "\nleading newline",
  "\n\n",
  "\n",
  "trailing spaces \nline",
  "line\n  indented",
  "  indented first\nsecond",
  "\r\n",
  "cr\rcr",
  "nul\u0000byte",
  "bell\u0007",
  "esc\u001b[0m",
  "del\u007f",
  "nel\u0085",
  "ls\u2028ps\u2029",
  "bom\ufeff",
  "\ufeffbom first",
  "nbsp\u00a0",
  "zwj\u200d",
  "bidi\u202eoverride",
  "noncharacter\uffff\ufffe",
  "lone \ud800 surrogate",
  "lone \udc00 low",
  "Grüße, 世界 ✓ — emoji 🚀",
  "👩‍👩‍👧",
  "ñandú",
  "e\u0301",
  "\u0301combining first",
  "日本語\u3000全角",
  "back\\slash",
  'quote"mid',
  "it's",
  "http://example.com/a?b=c#d",
  "nginx:1.25",
  "app.kubernetes.io/name",
  "10Gi",
  "500m",
  "1x",
  "1e",
  "0xZZ",
  "x".repeat(5000),
  "line\n".repeat(200),
];

describe("toYaml", () => {
  it("writes every tricky string back as the same string, as a value, a key and a list item", () => {
    for (const s of TRICKY) {
      expectRoundTrip({ value: s });
      expectRoundTrip({ [s]: s });
      expectRoundTrip({ list: [s, [s], { [s]: [s] }] });
      expectRoundTrip([s]);
      expectRoundTrip(s);
    }
  });

  it("keeps number text exactly: int64 beyond 2^53, exponents, trailing zeros, -0", () => {
    const text =
      '{"big":9007199254740993,"min":-9223372036854775808,"max":9223372036854775807,' +
      '"exp":1.0e3,"E":1E400,"neg0":-0,"tiny":0.0000001,"zeros":2.50,"plain":[0,1,-1,0.1,2.5,1e+21,123456789012]}';
    const value = parseJson(text);
    const yaml = expectRoundTrip(value);
    expect(jsonText(readYaml(yaml))).toBe(text);
    for (const n of ["9007199254740993", "-9223372036854775808", "1.0e3", "1E400", "-0", "2.50", "1e+21"]) {
      expect(yaml.split("\n")).toContainEqual(
        expect.stringMatching(new RegExp(`^\\S*[:-] ${n.replace("+", "\\+")}$`)),
      );
    }
  });

  it("round-trips random documents built from tricky pieces (property test, seeded)", () => {
    let seed = 0x2f6b1d3;
    const random = () => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const PIECES = [
      ...TRICKY.filter((s) => s.length < 50),
      "a",
      "Z",
      "0",
      "9",
      ".",
      " ",
      "  ",
      ": ",
      " #",
      "- ",
      "\n",
      "\n\n",
      "\t",
      "\u00e9",
      "世",
      "🚀",
      "\ud83d",
      '"',
      "'",
      "\\",
    ];
    const NUMBERS = [
      "0",
      "-1",
      "42",
      "0.1",
      "2.50",
      "1.0e3",
      "1e-7",
      "9007199254740993",
      "-9223372036854775808",
    ];
    const str = () => Array.from({ length: Math.floor(random() * 5) }, () => pick(PIECES)).join("");
    const value = (depth: number): JsonValue => {
      const r = random();
      if (depth > 4 || r < 0.35) return str();
      if (r < 0.45) return parseJson(pick(NUMBERS));
      if (r < 0.5) return pick([null, true, false]);
      if (r < 0.75) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const obj: { [k: string]: JsonValue } = {};
      for (let i = Math.floor(random() * 5); i > 0; i--) obj[str()] = value(depth + 1);
      return obj;
    };
    for (let i = 0; i < 3000; i++) expectRoundTrip(value(0));
  });

  it("writes readable YAML: plain where safe, block literals for multi-line text, kubectl-style lists", () => {
    const yaml = toYaml({
      apiVersion: "example.com/v1",
      metadata: { labels: { "app.kubernetes.io/name": "web", tier: "on" }, name: "web-1" },
      spec: {
        image: "nginx:1.25",
        memory: "10Gi",
        script: "#!/bin/sh\necho hi\n",
        noNewline: "a\nb",
        blankLines: "a\n\n\n",
        indented: "  x\ny",
        tabs: "a\tb\nc",
        trailing: "a \nb",
        ports: [{ name: "http", port: 80 }, 443],
        empty: {},
        none: [],
        "8080": "8080",
      },
    });
    expect(yaml).toBe(
      [
        "apiVersion: example.com/v1",
        "metadata:",
        "  labels:",
        "    app.kubernetes.io/name: web",
        '    tier: "on"',
        "  name: web-1",
        "spec:",
        '  "8080": "8080"',
        "  image: nginx:1.25",
        "  memory: 10Gi",
        "  script: |",
        "    #!/bin/sh",
        "    echo hi",
        "  noNewline: |-",
        "    a",
        "    b",
        "  blankLines: |+",
        "    a",
        "",
        "",
        "  indented: |2-",
        "      x",
        "    y",
        "  tabs: |-",
        "    a\tb",
        "    c",
        '  trailing: "a \\nb"',
        "  ports:",
        "  - name: http",
        "    port: 80",
        "  - 443",
        "  empty: {}",
        "  none: []",
        "",
      ].join("\n"),
    );
  });

  it("escapes what a reviewer could not see, and quotes what YAML would read as another type", () => {
    expect(doubleQuoted("a\u202eb\u200d\u00a0\ufeff\u0085\x7f\x00\ud800🚀")).toBe(
      '"a\\u202Eb\\u200D\\xA0\\uFEFF\\x85\\x7F\\0\\uD800🚀"',
    );
    expect(doubleQuoted("\u{e0001}")).toBe('"\\U000E0001"');
    for (const s of ["web", "nginx:1.25", "10Gi", "Grüße, 世界 ✓", "/var/lib", "a#b", "it's"])
      expect(isPlainSafe(s), s).toBe(true);
    for (const s of [
      "yes",
      "Off",
      "0x1F",
      "1e3",
      "12:30",
      "2001-12-14",
      "",
      " a",
      "a ",
      "a: b",
      "a #b",
      "a:",
      "-a",
    ])
      expect(isPlainSafe(s), s).toBe(false);
  });

  it("writes keys longer than YAML's implicit-key limit as explicit keys", () => {
    const long = "k".repeat(2000);
    const yaml = expectRoundTrip({
      [long]: { a: [1] },
      list: [{ [long]: "v" }],
      seq: { [long]: [1, { b: 2 }] },
    });
    expect(yaml).toContain(`? ${long}`);
  });

  it("refuses values nested deeper than MAX_DEPTH, with a CrdBackupError", () => {
    let deep: JsonValue = 1;
    for (let i = 0; i < MAX_DEPTH + 5; i++) deep = [deep];
    expect(() => toYaml({ deep })).toThrow(CrdBackupError);
    let ok: JsonValue = "x";
    for (let i = 0; i < 100; i++) ok = { a: ok };
    expectRoundTrip(ok);
  });
});
