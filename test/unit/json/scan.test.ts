/**
 * The lossless JSON scanner (src/json/scan.ts) against JSON.parse, on seeded random documents:
 * nested objects and arrays, strings spelled with every kind of escape (surrogate pairs too),
 * numbers in every form Go's encoder or a hand-written manifest may use, and whitespace anywhere
 * JSON allows it. Where JSON.parse is exact the scanner must agree with it; where it is not
 * (integers beyond 2^53, long fractions), the scanner's spans must hold the source text byte for
 * byte, as src/json/json.ts's lossless form does.
 */
import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { parseJson, stringifyJson, type JsonValue } from "../../../src/json/json.ts";
import {
  arrayElements,
  ElementCursor,
  leadingMember,
  MemberCursor,
  objectMembers,
  parseAt,
  skipWhitespace,
  stringAt,
  stringEnd,
  trailingMember,
  valueEnd,
} from "../../../src/json/scan.ts";

// ---------------------------------------------------------------------------------------------
// a seeded generator of JSON documents

/** mulberry32: small, seedable, good enough to pick shapes. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a document holds: numbers and literals as their source text, strings decoded. */
type Node =
  | { kind: "number"; text: string; big: boolean }
  | { kind: "literal"; text: "true" | "false" | "null" }
  | { kind: "string"; value: string }
  | { kind: "array"; items: Node[] }
  | { kind: "object"; members: [string, Node][] };

class Gen {
  readonly #r: () => number;
  constructor(seed: number) {
    this.#r = rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.#r() * n);
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  digits(n: number, leadingNonZero = false): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String(i === 0 && leadingNonZero ? 1 + this.int(9) : this.int(10));
    return s;
  }

  /** Whitespace JSON allows between tokens, usually none. */
  ws(): string {
    return this.chance(0.7) ? "" : this.pick([" ", "\n", "\t", "\r\n", "  ", " \n\t "]);
  }

  number(): Node {
    const sign = this.chance(0.35) ? "-" : "";
    const intPart = () => (this.chance(0.15) ? "0" : this.digits(1 + this.int(6), true));
    switch (this.int(7)) {
      case 0: {
        // an int64 beyond 2^53: 17 to 19 digits (>= 1e16 > 2^53), or right at the edge
        const text = this.chance(0.2)
          ? this.pick(["9007199254740993", "9223372036854775807", "9223372036854775808"])
          : this.digits(17 + this.int(3), true);
        return { kind: "number", text: sign + text, big: true };
      }
      case 1: // a fraction, sometimes long or with trailing zeros
        return { kind: "number", text: `${sign}${intPart()}.${this.digits(1 + this.int(20))}`, big: false };
      case 2: {
        // an exponent in every spelling
        const mantissa = this.chance(0.5) ? intPart() : `${intPart()}.${this.digits(1 + this.int(4))}`;
        const e = `${this.pick(["e", "E"])}${this.pick(["", "+", "-"])}${this.digits(1 + this.int(3))}`;
        return { kind: "number", text: `${sign}${mantissa}${e}`, big: false };
      }
      case 3:
        return { kind: "number", text: this.pick(["0", "-0", "0.0", "-0.0", "1e400", "5e-324"]), big: false };
      default:
        return { kind: "number", text: sign + intPart(), big: false };
    }
  }

  /** One character (as a string of one or two UTF-16 units) of a string. */
  char(): string {
    switch (this.int(9)) {
      case 0:
        return this.pick(['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u0000", "\u001f", "\u007f"]);
      case 1: // structural characters, which the scanner must not take for structure inside a string
        return this.pick(["{", "}", "[", "]", ",", ":", " "]);
      case 2:
        return this.pick(["é", "ß", "✓", "中", "\u2028", "\u2029", "\ufeff", "\uffff"]);
      case 3: // outside the BMP: a surrogate pair in UTF-16, four bytes in UTF-8
        return this.pick(["😀", "𝄞", "🇩🇪", "\u{10ffff}", "\u{1f9d1}"]);
      default:
        return String.fromCharCode(0x61 + this.int(26));
    }
  }

  stringValue(long = false): string {
    // now and then longer than the scanner's short-string loop (32 bytes) to reach its indexOf path
    const n = long || this.chance(0.15) ? 30 + this.int(60) : this.int(12);
    let s = "";
    for (let i = 0; i < n; i++) s += this.char();
    // a lone surrogate, which JSON can only spell as an escape
    if (this.chance(0.05)) s += this.pick(["\ud800", "\udfff"]);
    return s;
  }

  /** A string's JSON text, each character spelled raw or escaped at random. */
  stringText(value: string): string {
    const hex = (u: number) => {
      const h = u.toString(16).padStart(4, "0");
      return `\\u${this.chance(0.5) ? h : h.toUpperCase()}`;
    };
    const short: Record<string, string> = {
      '"': '\\"',
      "\\": "\\\\",
      "\b": "\\b",
      "\f": "\\f",
      "\n": "\\n",
      "\r": "\\r",
      "\t": "\\t",
    };
    let out = '"';
    for (let i = 0; i < value.length; i++) {
      const u = value.charCodeAt(i);
      const pair = u >= 0xd800 && u <= 0xdbff && i + 1 < value.length;
      const lone = !pair && u >= 0xd800 && u <= 0xdfff;
      const ch = pair ? value.slice(i, i + 2) : value[i]!;
      if (u < 0x20 || ch === '"' || ch === "\\" || lone) {
        out += short[ch] !== undefined && this.chance(0.7) ? short[ch] : hex(u);
      } else if (ch === "/" && this.chance(0.5)) out += "\\/";
      else if (this.chance(0.15)) out += pair ? hex(u) + hex(value.charCodeAt(i + 1)) : hex(u);
      else out += ch;
      if (pair) i++;
    }
    return out + '"';
  }

  value(depth: number): Node {
    const k = this.int(depth <= 0 ? 6 : 10);
    if (k <= 1) return this.number();
    if (k === 2) return { kind: "literal", text: this.pick(["true", "false", "null"] as const) };
    if (k <= 5) return { kind: "string", value: this.stringValue() };
    if (k <= 7) return this.object(depth - 1);
    return this.array(depth - 1);
  }

  object(depth: number): Node {
    const n = this.int(6);
    const keys = new Set<string>(); // unique: JSON.parse keeps the last of a repeated key
    while (keys.size < n)
      keys.add(this.chance(0.6) ? this.pick(KEYS) + this.digits(this.int(2)) : this.stringValue());
    return { kind: "object", members: [...keys].map((key) => [key, this.value(depth)]) };
  }

  array(depth: number): Node {
    const n = this.int(6);
    return { kind: "array", items: Array.from({ length: n }, () => this.value(depth)) };
  }

  /** The document's text, with random whitespace and escapes. */
  text(node: Node): string {
    switch (node.kind) {
      case "number":
      case "literal":
        return node.text;
      case "string":
        return this.stringText(node.value);
      case "array":
        return `[${this.ws()}${node.items.map((item) => this.text(item)).join(`${this.ws()},${this.ws()}`)}${this.ws()}]`;
      case "object": {
        const members = node.members.map(
          ([key, value]) => `${this.stringText(key)}${this.ws()}:${this.ws()}${this.text(value)}`,
        );
        return `{${this.ws()}${members.join(`${this.ws()},${this.ws()}`)}${this.ws()}}`;
      }
    }
  }
}

const KEYS = ["apiVersion", "kind", "metadata", "spec", "status", "items", "name", "n", "x_y", "a.b/c"];

/** The plain value of a node: what JSON.parse makes of its text. */
function plain(node: Node): unknown {
  switch (node.kind) {
    case "number":
    case "literal":
      return JSON.parse(node.text);
    case "string":
      return node.value;
    case "array":
      return node.items.map(plain);
    case "object":
      return Object.fromEntries(node.members.map(([k, v]) => [k, plain(v)]));
  }
}

/** The lossless value of a node: what parseJson (src/json/json.ts) makes of its text. */
function lossless(node: Node): JsonValue {
  switch (node.kind) {
    case "number":
      return String(Number(node.text)) === node.text ? Number(node.text) : JSON.rawJSON(node.text);
    case "literal":
      return JSON.parse(node.text) as JsonValue;
    case "string":
      return node.value;
    case "array":
      return node.items.map(lossless);
    case "object":
      return Object.fromEntries(node.members.map(([k, v]) => [k, lossless(v)]));
  }
}

/** The node with every number as a raw JSON value of its text. */
function asRaw(node: Node): JsonValue {
  switch (node.kind) {
    case "number":
      return JSON.rawJSON(node.text);
    case "literal":
      return JSON.parse(node.text) as JsonValue;
    case "string":
      return node.value;
    case "array":
      return node.items.map(asRaw);
    case "object":
      return Object.fromEntries(node.members.map(([k, v]) => [k, asRaw(v)]));
  }
}

/** JSON.parse with every number kept as the source text the parser saw for it. */
function withSources(text: string): unknown {
  const keep = (_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === "number" ? JSON.rawJSON(context!.source!) : value;
  return JSON.parse(text, keep as (key: string, value: unknown) => unknown);
}

function bigNumbers(node: Node): string[] {
  if (node.kind === "number") return node.big ? [node.text] : [];
  if (node.kind === "array") return node.items.flatMap(bigNumbers);
  if (node.kind === "object") return node.members.flatMap(([, v]) => bigNumbers(v));
  return [];
}

// ---------------------------------------------------------------------------------------------
// reading a document back with nothing but the scanner

interface Spanned {
  node: Node;
  start: number;
  end: number;
}

/**
 * The value at bytes[start, end) as the scanner sees it: objects through objectMembers, arrays
 * through arrayElements, strings through stringAt, and numbers and literals as their bytes.
 * Every sub-value is handed to `visit` with its span.
 */
function read(bytes: Buffer, start: number, end: number, visit: (s: Spanned) => void): Node {
  let node: Node;
  const c = bytes[start];
  if (c === 0x7b) {
    const object = objectMembers(bytes, start);
    expect(object.end).toBe(end);
    node = {
      kind: "object",
      members: object.members.map((m) => {
        // the member starts at its key, and its value after the colon
        expect(bytes[m.start]).toBe(0x22);
        expect(m.valueStart).toBeGreaterThan(m.start);
        return [m.key, read(bytes, m.valueStart, m.end, visit)];
      }),
    };
  } else if (c === 0x5b) {
    node = { kind: "array", items: arrayElements(bytes, start).map(([s, e]) => read(bytes, s, e, visit)) };
  } else if (c === 0x22) {
    expect(stringEnd(bytes, start)).toBe(end);
    node = { kind: "string", value: stringAt(bytes, start, end)! };
  } else {
    const text = bytes.toString("utf8", start, end);
    node =
      text === "true" || text === "false" || text === "null"
        ? { kind: "literal", text }
        : { kind: "number", text, big: false };
    expect(stringAt(bytes, start, end)).toBeUndefined();
  }
  // wherever a value starts, valueEnd finds where it ends
  expect(valueEnd(bytes, start)).toBe(end);
  visit({ node, start, end });
  return node;
}

/** Node without the generator's `big` marks, to compare with what the scanner read. */
function unmarked(node: Node): Node {
  if (node.kind === "number") return { kind: "number", text: node.text, big: false };
  if (node.kind === "array") return { kind: "array", items: node.items.map(unmarked) };
  if (node.kind === "object")
    return { kind: "object", members: node.members.map(([k, v]) => [k, unmarked(v)]) };
  return node;
}

const SEED = 0x5ca22022;
const DOCUMENTS = 400;

/** Generated documents: objects or arrays at the top, as the API server sends, with outer whitespace. */
function documents(): { i: number; node: Node; text: string }[] {
  const gen = new Gen(SEED);
  return Array.from({ length: DOCUMENTS }, (_, i) => {
    const node = gen.chance(0.8) ? gen.object(4) : gen.array(4);
    return { i, node, text: `${gen.ws()}${gen.text(node)}${gen.ws()}` };
  });
}

const DOCS = documents();

describe("the JSON scanner on generated documents", () => {
  it("generates what it means to: every kind of value, big integers JSON.parse cannot keep, surrogate pairs", () => {
    const all = DOCS.map((d) => d.text).join("");
    const big = DOCS.flatMap((d) => bigNumbers(d.node));
    expect(big.length).toBeGreaterThan(50);
    // the problem the lossless form solves is real for most of them
    expect(big.filter((t) => String(JSON.parse(t)) !== t).length).toBeGreaterThan(big.length / 2);
    expect(all).toMatch(/\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}/); // an escaped pair
    expect(all).toContain("😀"); // a raw one
    expect(all).toMatch(/\d[eE][+-]?\d/);
    expect(all).toMatch(/\\\\"/); // a backslash right before a closing quote
    expect(all).toMatch(/"[^"\\]{33,}/); // past the short-string loop
    expect(all).toMatch(/[\t\n\r ][,:\]}]/);
  });

  it.each(DOCS.map((d) => [d.i, d]))(
    "reads document %i as JSON.parse does, big integers kept exactly",
    (_i, doc) => {
      const bytes = Buffer.from(doc.text, "utf8");
      const start = skipWhitespace(bytes, 0);
      const end = Buffer.byteLength(doc.text.trimEnd());
      const spans: Spanned[] = [];
      const scanned = read(bytes, start, end, (s) => spans.push(s));

      // the scanner's view is the document's: keys and strings decoded, numbers as their source text
      expect(scanned).toEqual(unmarked(doc.node));
      // ... so where JSON.parse is exact, the two agree value for value
      expect(plain(scanned)).toEqual(JSON.parse(doc.text));
      // ... and each number's span is the very text JSON.parse saw for it (its reviver's source)
      expect(stringifyJson(asRaw(scanned))).toBe(JSON.stringify(withSources(doc.text)));
      // big integers come back byte for byte, as the lossless parse of src/json/json.ts keeps them
      const big = bigNumbers(doc.node);
      const numberTexts = spans
        .filter((s) => s.node.kind === "number")
        .map((s) => bytes.toString("utf8", s.start, s.end));
      for (const text of big) expect(numberTexts).toContain(text);
      if (big.length > 0) expect(stringifyJson(lossless(scanned))).toBe(stringifyJson(parseJson(doc.text)));
      // every value's span parses on its own (parseAt) to the value it holds
      for (const s of spans) expect(parseAt(bytes, s.start, s.end)).toEqual(plain(s.node));
    },
  );

  it("walks objects member by member with MemberCursor, and keyIs agrees with the decoded key", () => {
    let checked = 0;
    for (const doc of DOCS) {
      const bytes = Buffer.from(doc.text, "utf8");
      const visit = ({ node, start }: Spanned) => {
        if (node.kind !== "object") return;
        const m = new MemberCursor(bytes, start);
        const keys: string[] = [];
        while (m.next()) {
          const key = m.key();
          keys.push(key);
          if (!/^[\x20-\x7e]+$/.test(key)) continue; // keyIs compares ASCII keys
          expect(m.keyIs(key), key).toBe(true);
          expect(m.keyIs(`${key}x`), key).toBe(false);
          expect(m.keyIs(key.slice(1)), key).toBe(false);
          checked++;
        }
        expect(keys).toEqual(node.members.map(([k]) => k));
        expect(m.objectEnd).toBe(valueEnd(bytes, start));
      };
      const start = skipWhitespace(bytes, 0);
      read(bytes, start, valueEnd(bytes, start), visit);
    }
    expect(checked).toBeGreaterThan(500);
  });

  it("finds a top-level member's value with leadingMember, the first when a key repeats", () => {
    for (const doc of DOCS) {
      if (doc.node.kind !== "object") continue;
      const bytes = Buffer.from(doc.text, "utf8");
      const { members } = objectMembers(bytes, skipWhitespace(bytes, 0));
      for (const m of members) {
        if (!/^[\x20-\x7e]*$/.test(m.key)) continue;
        expect(leadingMember(bytes, m.key), m.key).toBe(m.valueStart);
      }
      expect(leadingMember(bytes, "no-such-key")).toBeUndefined();
    }
    expect(leadingMember(Buffer.from('{"a":1,"b":[2],"a":3}'), "a")).toBe(5);
  });

  it("finds a trailing object member from the end with trailingMember, and only the outer object's last one", () => {
    let found = 0;
    for (const doc of DOCS) {
      if (doc.node.kind !== "object") continue;
      const bytes = Buffer.from(doc.text, "utf8");
      const { members } = objectMembers(bytes, skipWhitespace(bytes, 0));
      const last = members.at(-1);
      if (!last || bytes[last.valueStart] !== 0x7b) continue;
      // it looks for the key spelled plainly and right before its colon, as Go writes it
      if (
        bytes.toString("utf8", last.start, last.valueStart).replace(/\s+$/, "") !==
        `${JSON.stringify(last.key)}:`
      )
        continue;
      if (!/^[a-zA-Z0-9_./]+$/.test(last.key)) continue;
      // a nested member of the same name after it is the one found from the end (then: undefined)
      if (bytes.toString("utf8", last.valueStart, last.end).includes(`"${last.key}":`)) continue;
      expect(trailingMember(bytes, last.key)).toEqual({
        start: last.start,
        value: parseAt(bytes, last.valueStart, last.end),
      });
      found++;
      // a member before the last one is not found from the end
      for (const m of members.slice(0, -1))
        if (m.key !== last.key) expect(trailingMember(bytes, m.key)).toBeUndefined();
    }
    expect(found).toBeGreaterThan(5);
    expect(trailingMember(Buffer.from('{"metadata":{"a":{}},"x":1}'), "metadata")).toBeUndefined();
    expect(trailingMember(Buffer.from('{"x":{"metadata":{}}}'), "metadata")).toBeUndefined(); // nested
    expect(trailingMember(Buffer.from('{"x":"\\"metadata\\":{}"}'), "metadata")).toBeUndefined(); // in a string
    expect(trailingMember(Buffer.from('{"x\\"metadata":{}}'), "metadata")).toBeUndefined(); // in a key
    expect(
      trailingMember(Buffer.from('{"metadata":{"continue":"c","n":9007199254740993}} \n'), "metadata"),
    ).toEqual({
      start: 1,
      value: { continue: "c", n: 9007199254740992 }, // parsed plainly: for metadata of strings and counts
    });
  });

  it("walks arrays with ElementCursor, the caller finding where each element ends", () => {
    for (const doc of DOCS) {
      if (doc.node.kind !== "array") continue;
      const bytes = Buffer.from(doc.text, "utf8");
      const start = skipWhitespace(bytes, 0);
      const elements = new ElementCursor(bytes, start);
      const starts: number[] = [];
      let end: number | undefined;
      while (elements.next(end)) {
        starts.push(elements.start);
        end = valueEnd(bytes, elements.start);
      }
      expect(starts).toEqual(arrayElements(bytes, start).map(([s]) => s));
      expect(elements.end).toBe(valueEnd(bytes, start));
      expect(elements.next()).toBe(false); // once closed, it stays closed
    }
  });

  it("resumes an object after a member with MemberCursor.after", () => {
    const bytes = Buffer.from('{"kind":"List","items":[{"a":"]"}] , "metadata":{"continue":"x"},"z":1}');
    const { members } = objectMembers(bytes, 0);
    const items = members.find((m) => m.key === "items")!;
    const rest = MemberCursor.after(bytes, items.end);
    const after: string[] = [];
    while (rest.next()) after.push(`${rest.key()}=${bytes.toString("utf8", rest.valueStart, rest.end)}`);
    expect(after).toEqual(['metadata={"continue":"x"}', "z=1"]);
    expect(rest.objectEnd).toBe(bytes.length);
  });

  it("reads keys spelled with escapes as the keys they are", () => {
    const bytes = Buffer.from('{"\\u006bind":"W","n\\u0061me":"x","\\"q\\"":1,"\\ud83d\\ude00":2,"plain":3}');
    const m = new MemberCursor(bytes, 0);
    const keys: string[] = [];
    while (m.next()) keys.push(m.key());
    expect(keys).toEqual(["kind", "name", '"q"', "😀", "plain"]);
    const c = new MemberCursor(bytes, 0);
    c.next();
    expect(c.keyIs("kind")).toBe(true);
    expect(c.keyIs("\\u006bind")).toBe(false);
    expect(leadingMember(bytes, "name")).toBe(bytes.indexOf('"x"'));
  });
});

// ---------------------------------------------------------------------------------------------
// malformed input

/** Walks the whole document with the scanner, as read() does; throws what the scanner throws. */
function walk(text: string): void {
  const bytes = Buffer.from(text, "utf8");
  // read() walks an object's members or an array's elements before it checks where the value ends
  read(bytes, skipWhitespace(bytes, 0), bytes.length, () => {});
}

function refusal(f: () => unknown): CrdBackupError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CrdBackupError);
    return e as CrdBackupError;
  }
  throw new Error("not refused");
}

describe("the JSON scanner refuses malformed input", () => {
  it.each([
    ['{"a":1', "expected ',' or '}'"],
    ['{"a":1 "b":2}', "expected ',' or '}'"],
    ['{"a" 1}', "expected ':'"],
    ["{a:1}", "expected a key"],
    ['{"a":1,}', "expected a key"],
    ["{,}", "expected a key"],
    ['{"a":}', "expected a value"],
    ['{"a":,"b":1}', "expected a value"],
    ['{"a":"x}', "unterminated string"],
    ['{"a":"x\\"}', "unterminated string"],
    ['{"a\\":1}', "unterminated string"],
    ['{"a":{"b":[1,2}', "unterminated object or array"],
    ["[1 2]", "expected ',' or ']'"],
    ["[1,2", "expected ',' or ']'"],
    ["[1,]", "expected a value"],
    ["[,1]", "expected a value"],
    ['["a",{"b":1]', "expected ',' or ']'"],
  ])("%s: %s", (text, what) => {
    const e = refusal(() => walk(text));
    expect(e.code).toBe("KUBE_API");
    expect(e.message).toMatch(/^malformed JSON from the API server at offset \d+: /);
    expect(e.message).toContain(what);
    expect(e.context["offset"]).toBeTypeOf("number");
  });

  it("says where: the offset of the byte it could not take, and the text near it, printable only", () => {
    const text = `{"name":"é","b":[1,2]  "c":3}`;
    const e = refusal(() => objectMembers(Buffer.from(text), 0));
    const at = Buffer.from(text).indexOf('"c"');
    expect(e.message).toBe(`malformed JSON from the API server at offset ${at}: expected ',' or '}'`);
    expect(e.context["near"]).toMatch(/^[\x20-\x7e]*$/);
    expect(e.context["near"]).toContain('"c":3}');
  });

  it("refuses an object where there is none, and an array where there is none", () => {
    expect(refusal(() => objectMembers(Buffer.from("[1]"), 0)).message).toContain("expected an object");
    expect(refusal(() => new MemberCursor(Buffer.from(' {"a":1}'), 0)).message).toContain(
      "expected an object",
    );
    expect(refusal(() => arrayElements(Buffer.from('{"a":1}'), 0)).message).toContain("expected an array");
    expect(refusal(() => leadingMember(Buffer.from('"items"'), "items")).message).toContain(
      "expected an object",
    );
  });

  it("refuses every truncation of a generated document", () => {
    const gen = new Gen(SEED + 1);
    let cuts = 0;
    for (const doc of DOCS.slice(0, 150)) {
      const text = doc.text.trim();
      if (text.length < 3) continue;
      // cut anywhere before the final bracket: the top-level value is never complete
      for (let n = 0; n < 4; n++) {
        const cut = 1 + gen.int(text.length - 1);
        const prefix = Buffer.from(text, "utf8").subarray(0, Buffer.byteLength(text.slice(0, cut)));
        expect(() => walk(prefix.toString("utf8")), `${doc.i} cut at ${cut}`).toThrow(CrdBackupError);
        cuts++;
      }
    }
    expect(cuts).toBeGreaterThan(400);
  });
});
