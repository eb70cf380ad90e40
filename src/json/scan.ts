import { CrdBackupError } from "../errors.ts";
import type { JsonObject } from "./json.ts";

/**
 * A scanner over JSON as UTF-8 bytes that finds where values begin and end without building them.
 * It lets a snapshot cut an object out of a list response, and fields out of an object, while
 * every other byte stays exactly as the API server sent it: numbers are never converted, so
 * nothing can be lost, and nothing is decoded or allocated per value, so it is several times
 * faster than parsing. Working on bytes is exact: every structural character is ASCII, and no
 * byte of a multi-byte UTF-8 sequence is below 0x80.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function bad(bytes: Buffer, at: number, what: string): never {
  throw new CrdBackupError("KUBE_API", `malformed JSON from the API server at offset ${at}: ${what}`, {
    offset: at,
    near: bytes.toString("latin1", Math.max(0, at - 20), at + 20).replace(/[^\x20-\x7e]/g, "?"),
  });
}

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export function skipWhitespace(bytes: Buffer, i: number): number {
  while (isSpace(bytes[i])) i++;
  return i;
}

/** Bytes looked at one by one before a string's end is searched for natively (see stringEnd). */
const SHORT_STRING = 32;

/** `i` at an opening quote; returns the index after the closing one. */
export function stringEnd(bytes: Buffer, i: number): number {
  let j = i + 1;
  for (;;) {
    // most strings are short, and for those a loop costs less than a call into indexOf
    let q = -1;
    const stop = Math.min(j + SHORT_STRING, bytes.length);
    for (let k = j; k < stop; k++) {
      if (bytes[k] === QUOTE) {
        q = k;
        break;
      }
    }
    if (q < 0 && stop < bytes.length) q = bytes.indexOf(QUOTE, stop);
    if (q < 0) bad(bytes, i, "unterminated string");
    let slashes = 0;
    for (let k = q - 1; bytes[k] === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** `i` at the first byte of a value; returns the index after it. */
export function valueEnd(bytes: Buffer, i: number): number {
  const c = bytes[i];
  if (c === QUOTE) return stringEnd(bytes, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < bytes.length; j++) {
      const d = bytes[j];
      if (d === QUOTE) j = stringEnd(bytes, j) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    bad(bytes, i, "unterminated object or array");
  }
  let j = i;
  for (; j < bytes.length; j++) {
    const d = bytes[j];
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
  }
  if (j === i) bad(bytes, i, "expected a value");
  return j;
}

export interface Member {
  key: string;
  /** Where `"key"` starts, where the value starts, and the index after the value. */
  start: number;
  valueStart: number;
  end: number;
}

/**
 * Walks the members of the object at `i` (which must be `{`) one at a time, allocating nothing per
 * member: after each next() that returns true, keyStart/valueStart/end locate the member, as in
 * Member, and keyIs() compares its key without decoding it.
 */
export class MemberCursor {
  readonly bytes: Buffer;
  keyStart = -1;
  valueStart = -1;
  end = -1;
  /** The index after the object, once next() has returned false. */
  objectEnd = -1;
  #keyEnd = -1;
  #escaped = false;

  constructor(bytes: Buffer, i: number, resume = false) {
    this.bytes = bytes;
    if (resume) {
      this.keyStart = this.valueStart = this.end = i;
      return;
    }
    if (bytes[i] !== 0x7b) bad(bytes, i, "expected an object");
    this.end = i + 1;
  }

  /** A cursor over the rest of an object, after a member whose value ends at `end`. */
  static after(bytes: Buffer, end: number): MemberCursor {
    return new MemberCursor(bytes, end, true);
  }

  next(): boolean {
    if (!this.nextKey()) return false;
    this.end = valueEnd(this.bytes, this.valueStart);
    return true;
  }

  /**
   * Like next(), but stops at the value's start: the caller walks the value and sets `end` to the
   * index after it before the next call.
   */
  nextKey(): boolean {
    const bytes = this.bytes;
    let j = skipWhitespace(bytes, this.end);
    const c = bytes[j];
    if (this.keyStart >= 0) {
      if (c === 0x7d) return this.#close(j);
      if (c !== 0x2c) bad(bytes, j, "expected ',' or '}'");
      j = skipWhitespace(bytes, j + 1);
    } else if (c === 0x7d) return this.#close(j);
    if (bytes[j] !== QUOTE) bad(bytes, j, "expected a key");
    const keyEnd = stringEnd(bytes, j);
    let escaped = false;
    for (let k = j + 1; k < keyEnd - 1; k++) if (bytes[k] === BACKSLASH) escaped = true;
    let v = skipWhitespace(bytes, keyEnd);
    if (bytes[v] !== 0x3a) bad(bytes, v, "expected ':'");
    v = skipWhitespace(bytes, v + 1);
    this.keyStart = j;
    this.#keyEnd = keyEnd;
    this.#escaped = escaped;
    this.valueStart = v;
    this.end = -1;
    return true;
  }

  /** Whether the current key is `key` (ASCII), however the text spells it. */
  keyIs(key: string): boolean {
    if (this.#escaped) return this.key() === key;
    if (this.#keyEnd - this.keyStart !== key.length + 2) return false;
    const bytes = this.bytes;
    const from = this.keyStart + 1;
    for (let n = 0; n < key.length; n++) if (bytes[from + n] !== key.charCodeAt(n)) return false;
    return true;
  }

  key(): string {
    if (this.#escaped) return JSON.parse(this.bytes.toString("utf8", this.keyStart, this.#keyEnd)) as string;
    return this.bytes.toString("utf8", this.keyStart + 1, this.#keyEnd - 1);
  }

  #close(j: number): false {
    this.objectEnd = j + 1;
    return false;
  }
}

/** The members of the object at `i` (which must be `{`), in order, and the index after it. */
export function objectMembers(bytes: Buffer, i: number): { members: Member[]; end: number } {
  const members: Member[] = [];
  const m = new MemberCursor(bytes, i);
  while (m.next()) members.push({ key: m.key(), start: m.keyStart, valueStart: m.valueStart, end: m.end });
  return { members, end: m.objectEnd };
}

/** The string value at bytes[i, end) decoded, or undefined if the value there is not a string. */
export function stringAt(bytes: Buffer, i: number, end: number): string | undefined {
  if (bytes[i] !== QUOTE) return undefined;
  for (let k = i + 1; k < end - 1; k++) {
    if (bytes[k] === BACKSLASH) return JSON.parse(bytes.toString("utf8", i, end)) as string;
  }
  return bytes.toString("utf8", i + 1, end - 1);
}

/** The value at bytes[i, end), parsed plainly: for values known to hold no int64 (metadata of a list). */
export function parseAt(bytes: Buffer, i: number, end: number): unknown {
  return JSON.parse(bytes.toString("utf8", i, end));
}

/**
 * Walks the elements of the array at `i` (which must be `[`) when the caller finds where each
 * element ends: each value is scanned once, by whoever reads it.
 */
export class ElementCursor {
  readonly bytes: Buffer;
  /** The current element's first byte. */
  start = -1;
  /** The index after the array, once next() has returned false. */
  end = -1;
  #at: number;

  constructor(bytes: Buffer, i: number) {
    if (bytes[i] !== 0x5b) bad(bytes, i, "expected an array");
    this.bytes = bytes;
    this.#at = i + 1;
  }

  /** Moves to the next element, given the index after the current one (found by the caller). */
  next(previousEnd?: number): boolean {
    const bytes = this.bytes;
    if (this.end >= 0) return false;
    let j: number;
    if (this.start < 0) {
      j = skipWhitespace(bytes, this.#at);
      if (bytes[j] === 0x5d) return this.#close(j);
    } else {
      j = skipWhitespace(bytes, previousEnd ?? valueEnd(bytes, this.start));
      const c = bytes[j];
      if (c === 0x5d) return this.#close(j);
      if (c !== 0x2c) bad(bytes, j, "expected ',' or ']'");
      j = skipWhitespace(bytes, j + 1);
    }
    this.start = j;
    return true;
  }

  #close(j: number): false {
    this.end = j + 1;
    return false;
  }
}

/**
 * The value start of the member `key` of the object that is all of `bytes`, walking the members
 * before it but not its value; undefined when the object has no such member.
 */
export function leadingMember(bytes: Buffer, key: string): number | undefined {
  const m = new MemberCursor(bytes, skipWhitespace(bytes, 0));
  while (m.nextKey()) {
    if (m.keyIs(key)) return m.valueStart;
    m.end = valueEnd(bytes, m.valueStart);
  }
  return undefined;
}

/**
 * The member `key` of the object that is all of `bytes`, when it is the object's last member and
 * its value an object: found from the end, without scanning what comes before. The value is
 * parsed plainly (callers use it for metadata of strings and counts). Undefined when the text
 * does not end that way. That the member is the outer object's own (not a nested one that
 * happens to come last) holds once the rest of the text is known to be well formed: its value
 * parses as exactly one object, and after it comes only the final `}`.
 */
export function trailingMember(bytes: Buffer, key: string): { start: number; value: JsonObject } | undefined {
  const start = bytes.lastIndexOf(`"${key}":`);
  if (start <= 0) return undefined;
  let slashes = 0;
  for (let k = start - 1; bytes[k] === BACKSLASH; k--) slashes++;
  if (slashes % 2 === 1) return undefined; // an escaped quote: inside a string
  let close = bytes.length - 1;
  while (close > start && isSpace(bytes[close])) close--;
  if (bytes[close] !== 0x7d) return undefined;
  const valueStart = skipWhitespace(bytes, start + key.length + 3);
  if (bytes[valueStart] !== 0x7b) return undefined;
  try {
    const value = parseAt(bytes, valueStart, close);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? { start, value: value as JsonObject }
      : undefined;
  } catch {
    return undefined;
  }
}

/** The elements of the array at `i` (which must be `[`), as [start, end) spans. */
export function arrayElements(bytes: Buffer, i: number): [number, number][] {
  const spans: [number, number][] = [];
  const elements = new ElementCursor(bytes, i);
  let end: number | undefined;
  while (elements.next(end)) {
    end = valueEnd(bytes, elements.start);
    spans.push([elements.start, end]);
  }
  return spans;
}
