import { CrdBackupError } from "../errors.ts";
import type { JsonObject } from "./json.ts";

/**
 * A scanner over JSON text that finds where values begin and end without building them. It lets
 * a snapshot cut an object out of a list response, and fields out of an object, while every other
 * byte stays exactly as the API server sent it: numbers are never converted, so nothing can be
 * lost, and nothing is allocated per value, so it is several times faster than parsing.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function bad(text: string, at: number, what: string): never {
  throw new CrdBackupError("KUBE_API", `malformed JSON from the API server at offset ${at}: ${what}`, {
    offset: at,
    near: text.slice(Math.max(0, at - 20), at + 20).replace(/[^\x20-\x7e]/g, "?"),
  });
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export function skipWhitespace(text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** `i` at an opening quote; returns the index after the closing one. */
export function stringEnd(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = text.indexOf('"', j);
    if (q < 0) bad(text, i, "unterminated string");
    let slashes = 0;
    for (let k = q - 1; text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** `i` at the first character of a value; returns the index after it. */
export function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text.charCodeAt(j);
      if (d === QUOTE) j = stringEnd(text, j) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    bad(text, i, "unterminated object or array");
  }
  let j = i;
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j);
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
  }
  if (j === i) bad(text, i, "expected a value");
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
  readonly text: string;
  keyStart = -1;
  valueStart = -1;
  end = -1;
  /** The index after the object, once next() has returned false. */
  objectEnd = -1;
  #keyEnd = -1;
  #escaped = false;

  constructor(text: string, i: number, resume = false) {
    this.text = text;
    if (resume) {
      this.keyStart = this.valueStart = this.end = i;
      return;
    }
    if (text.charCodeAt(i) !== 0x7b) bad(text, i, "expected an object");
    this.end = i + 1;
  }

  /** A cursor over the rest of an object, after a member whose value ends at `end`. */
  static after(text: string, end: number): MemberCursor {
    return new MemberCursor(text, end, true);
  }

  next(): boolean {
    if (!this.nextKey()) return false;
    this.end = valueEnd(this.text, this.valueStart);
    return true;
  }

  /**
   * Like next(), but stops at the value's start: the caller walks the value and sets `end` to the
   * index after it before the next call.
   */
  nextKey(): boolean {
    const text = this.text;
    let j = skipWhitespace(text, this.end);
    const c = text.charCodeAt(j);
    if (this.keyStart >= 0) {
      if (c === 0x7d) return this.#close(j);
      if (c !== 0x2c) bad(text, j, "expected ',' or '}'");
      j = skipWhitespace(text, j + 1);
    } else if (c === 0x7d) return this.#close(j);
    if (text.charCodeAt(j) !== QUOTE) bad(text, j, "expected a key");
    const keyEnd = stringEnd(text, j);
    let escaped = false;
    for (let k = j + 1; k < keyEnd - 1; k++) if (text.charCodeAt(k) === BACKSLASH) escaped = true;
    let v = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(v) !== 0x3a) bad(text, v, "expected ':'");
    v = skipWhitespace(text, v + 1);
    this.keyStart = j;
    this.#keyEnd = keyEnd;
    this.#escaped = escaped;
    this.valueStart = v;
    this.end = -1;
    return true;
  }

  /** Whether the current key is `key`, however the text spells it. */
  keyIs(key: string): boolean {
    if (this.#escaped) return this.key() === key;
    return this.#keyEnd - this.keyStart === key.length + 2 && this.text.startsWith(key, this.keyStart + 1);
  }

  key(): string {
    const raw = this.text.slice(this.keyStart, this.#keyEnd);
    return this.#escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  }

  #close(j: number): false {
    this.objectEnd = j + 1;
    return false;
  }
}

/** The members of the object at `i` (which must be `{`), in order, and the index after it. */
export function objectMembers(text: string, i: number): { members: Member[]; end: number } {
  const members: Member[] = [];
  const m = new MemberCursor(text, i);
  while (m.next()) members.push({ key: m.key(), start: m.keyStart, valueStart: m.valueStart, end: m.end });
  return { members, end: m.objectEnd };
}

/** The string value at `i` decoded, or undefined if the value there is not a string. */
export function stringAt(text: string, i: number, end: number): string | undefined {
  if (text.charCodeAt(i) !== QUOTE) return undefined;
  return JSON.parse(text.slice(i, end)) as string;
}

/**
 * Walks the elements of the array at `i` (which must be `[`) when the caller finds where each
 * element ends: each value is scanned once, by whoever reads it.
 */
export class ElementCursor {
  readonly text: string;
  /** The current element's first character. */
  start = -1;
  /** The index after the array, once next() has returned false. */
  end = -1;
  #at: number;

  constructor(text: string, i: number) {
    if (text.charCodeAt(i) !== 0x5b) bad(text, i, "expected an array");
    this.text = text;
    this.#at = i + 1;
  }

  /** Moves to the next element, given the index after the current one (found by the caller). */
  next(previousEnd?: number): boolean {
    const text = this.text;
    if (this.end >= 0) return false;
    let j: number;
    if (this.start < 0) {
      j = skipWhitespace(text, this.#at);
      if (text.charCodeAt(j) === 0x5d) return this.#close(j);
    } else {
      j = skipWhitespace(text, previousEnd ?? valueEnd(text, this.start));
      const c = text.charCodeAt(j);
      if (c === 0x5d) return this.#close(j);
      if (c !== 0x2c) bad(text, j, "expected ',' or ']'");
      j = skipWhitespace(text, j + 1);
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
 * The value start of the member `key` of the object that is all of `text`, walking the members
 * before it but not its value; undefined when the object has no such member.
 */
export function leadingMember(text: string, key: string): number | undefined {
  const m = new MemberCursor(text, skipWhitespace(text, 0));
  while (m.nextKey()) {
    if (m.keyIs(key)) return m.valueStart;
    m.end = valueEnd(text, m.valueStart);
  }
  return undefined;
}

/**
 * The member `key` of the object that is all of `text`, when it is the object's last member and
 * its value an object: found from the end, without scanning what comes before. The value is
 * parsed plainly (callers use it for metadata of strings and counts). Undefined when the text
 * does not end that way. That the member is the outer object's own (not a nested one that
 * happens to come last) holds once the rest of the text is known to be well formed: its value
 * parses as exactly one object, and after it comes only the final `}`.
 */
export function trailingMember(text: string, key: string): { start: number; value: JsonObject } | undefined {
  const needle = `"${key}":`;
  const start = text.lastIndexOf(needle);
  if (start <= 0) return undefined;
  let slashes = 0;
  for (let k = start - 1; text.charCodeAt(k) === BACKSLASH; k--) slashes++;
  if (slashes % 2 === 1) return undefined; // an escaped quote: inside a string
  let close = text.length - 1;
  while (close > start && isSpace(text.charCodeAt(close))) close--;
  if (text.charCodeAt(close) !== 0x7d) return undefined;
  const valueStart = skipWhitespace(text, start + needle.length);
  if (text.charCodeAt(valueStart) !== 0x7b) return undefined;
  try {
    const value: unknown = JSON.parse(text.slice(valueStart, close));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? { start, value: value as JsonObject }
      : undefined;
  } catch {
    return undefined;
  }
}

/** The elements of the array at `i` (which must be `[`), as [start, end) spans. */
export function arrayElements(text: string, i: number): [number, number][] {
  const spans: [number, number][] = [];
  const elements = new ElementCursor(text, i);
  let end: number | undefined;
  while (elements.next(end)) {
    end = valueEnd(text, elements.start);
    spans.push([elements.start, end]);
  }
  return spans;
}
