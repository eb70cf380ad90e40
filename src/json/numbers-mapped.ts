import { parseJson, type JsonValue } from "./json.ts";

/**
 * The tree parseJson builds, without its reviver when the text has numbers a float64 does not
 * reproduce: a plain JSON.parse, then each such number put back as JSON.rawJSON of its text. The
 * reviver cost five times a plain parse on a 512-byte object holding one int64 (bench/history.ts:
 * 43 µs against 8 µs), and `changes` parses two bodies per changed object.
 *
 * The n-th number token of the text (outside strings) is the n-th number of the tree walked in
 * property order. That holds when no object has an integer-like key (JavaScript puts those first)
 * or a key given twice (the last value wins, at the first one's place); anything that might break
 * it (such a key, an escape in a key, counts that differ) falls back to parseJson.
 */
export function parseJsonMapped(text: string): JsonValue {
  const scanned = scanNumbers(text);
  if (scanned === undefined) return parseJson(text);
  if (scanned.raw.every((r) => r === undefined)) return JSON.parse(text) as JsonValue;
  const tree = JSON.parse(text) as JsonValue;
  const seen = { numbers: 0, keys: 0 };
  const put = (v: JsonValue): JsonValue => {
    if (typeof v === "number") {
      const raw = scanned.raw[seen.numbers++];
      return raw === undefined ? v : JSON.rawJSON(raw);
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const w = put(v[i]!);
        if (w !== v[i]) v[i] = w;
      }
    } else if (v !== null && typeof v === "object") {
      const o = v as Record<string, JsonValue>;
      for (const k of Object.keys(o)) {
        seen.keys++;
        const w = put(o[k]!);
        if (w !== o[k]) o[k] = w;
      }
    }
    return v;
  };
  const out = put(tree);
  if (seen.numbers !== scanned.raw.length || seen.keys !== scanned.keys) return parseJson(text);
  return out;
}

const INTEGER_KEY = /^(?:0|[1-9][0-9]*)$/;

/**
 * Number tokens outside strings, in document order: undefined for one whose text String(Number())
 * gives back, else its text; and the count of object keys. Undefined: the order cannot be relied on.
 * The text is not validated here: JSON.parse does that.
 */
function scanNumbers(text: string): { raw: (string | undefined)[]; keys: number } | undefined {
  const raw: (string | undefined)[] = [];
  let keys = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: its end is the next quote not escaped by an odd run of backslashes
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end < 0) return undefined;
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      let j = end + 1;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) === 0x3a) {
        const key = text.slice(i + 1, end);
        if (key.includes("\\") || INTEGER_KEY.test(key)) return undefined;
        keys++;
      }
      i = end + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && isNumberChar(text.charCodeAt(j))) j++;
      const token = text.slice(i, j);
      raw.push(String(Number(token)) === token ? undefined : token);
      i = j;
    } else i++;
  }
  return { raw, keys };
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Digits, sign, point and exponent: what a JSON number token is made of. */
const isNumberChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
