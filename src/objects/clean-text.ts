import type { EntryBody } from "../archive/writer.ts";
import { arrayElements, MemberCursor, skipWhitespace, stringAt, valueEnd } from "../json/scan.ts";
import { SERVER_OWNED_METADATA } from "./clean.ts";

export interface CleanedObject {
  /** The object as the API server sent it, less server-owned metadata (and status when dropped). */
  body: CleanBody;
  /** The index in the page after the object. */
  end: number;
  name: string;
  namespace: string | undefined;
  uid: string | undefined;
  /** The body's apiVersion and kind, when they are strings: the archive index records them. */
  apiVersion: string | undefined;
  kind: string | undefined;
  /** metadata.ownerReferences, reduced to each owner's uid (undefined when not a string). */
  ownerReferences: ({ uid: string | undefined } | null)[] | undefined;
}

const COMMA = 0x2c;

/**
 * A cleaned object as spans of the page's bytes and the few bytes cleaning puts between them. It
 * is not copied anywhere until the archive writer copies it into place, and never decoded.
 */
export class CleanBody implements EntryBody {
  readonly #source: Buffer;
  /** [start, end) pairs of source bytes; a pair whose start is negative is the one byte -start - 1. */
  readonly #parts: number[] = [];
  length = 0;

  constructor(source: Buffer) {
    this.#source = source;
  }

  byte(c: number): void {
    this.#parts.push(-c - 1, 0);
    this.length++;
  }

  span(start: number, end: number): void {
    this.#parts.push(start, end);
    this.length += end - start;
  }

  /**
   * The member at source[start, end) of the object being written. A member that the source
   * already separates from the previous one with a single comma extends the previous span.
   */
  member(start: number, end: number, first: boolean): void {
    if (!first) {
      const parts = this.#parts;
      const last = parts.length - 1;
      if (
        last > 0 &&
        parts[last - 1]! >= 0 &&
        parts[last] === start - 1 &&
        this.#source[start - 1] === COMMA
      ) {
        this.length += end - parts[last]!;
        parts[last] = end;
        return;
      }
      this.byte(COMMA);
    }
    this.span(start, end);
  }

  copyTo(target: Buffer, at: number): void {
    const parts = this.#parts;
    const source = this.#source;
    for (let p = 0; p < parts.length; p += 2) {
      const start = parts[p]!;
      const end = parts[p + 1]!;
      if (start < 0) target[at++] = -start - 1;
      else if (end - start < 64) for (let i = start; i < end; i++) target[at++] = source[i]!;
      else at += source.copy(target, at, start, end);
    }
  }

  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.copyTo(out, 0);
    return out;
  }
}

/**
 * cleanObject on bytes: the object at `start` with server-owned metadata cut out and every other
 * byte kept, so values are stored exactly as served (int64 beyond 2^53, escapes, key order). It
 * reads the fields the archive index needs on the way, so nothing parses the object again.
 */
export function cleanObjectText(
  bytes: Buffer,
  start: number,
  options: { dropStatus?: boolean } = {},
): CleanedObject {
  const cleaned: CleanedObject = {
    body: new CleanBody(bytes),
    end: -1,
    name: "",
    namespace: undefined,
    uid: undefined,
    apiVersion: undefined,
    kind: undefined,
    ownerReferences: undefined,
  };
  const body = cleaned.body;
  const top = new MemberCursor(bytes, skipWhitespace(bytes, start));
  body.byte(0x7b);
  let first = true;
  while (top.nextKey()) {
    if (top.keyIs("metadata")) {
      if (!first) body.byte(COMMA);
      body.span(top.keyStart, top.valueStart);
      top.end = cleanMetadata(bytes, top.valueStart, cleaned);
      first = false;
      continue;
    }
    top.end = valueEnd(bytes, top.valueStart);
    if (options.dropStatus && top.keyIs("status")) continue;
    if (top.keyIs("apiVersion")) cleaned.apiVersion = stringAt(bytes, top.valueStart, top.end);
    else if (top.keyIs("kind")) cleaned.kind = stringAt(bytes, top.valueStart, top.end);
    body.member(top.keyStart, top.end, first);
    first = false;
  }
  body.byte(0x7d);
  cleaned.end = top.objectEnd;
  return cleaned;
}

/** Writes the metadata object at `start`, cleaned, and returns the index after it. */
function cleanMetadata(bytes: Buffer, start: number, cleaned: CleanedObject): number {
  const body = cleaned.body;
  const meta = new MemberCursor(bytes, start);
  body.byte(0x7b);
  let first = true;
  members: while (meta.next()) {
    if (meta.keyIs("name")) cleaned.name = stringAt(bytes, meta.valueStart, meta.end) ?? cleaned.name;
    else if (meta.keyIs("namespace"))
      cleaned.namespace = stringAt(bytes, meta.valueStart, meta.end) ?? cleaned.namespace;
    else if (meta.keyIs("uid")) cleaned.uid = stringAt(bytes, meta.valueStart, meta.end) ?? cleaned.uid;
    else if (meta.keyIs("ownerReferences")) cleaned.ownerReferences = ownerUids(bytes, meta.valueStart);
    for (const field of SERVER_OWNED_METADATA) if (meta.keyIs(field)) continue members;
    body.member(meta.keyStart, meta.end, first);
    first = false;
  }
  body.byte(0x7d);
  return meta.objectEnd;
}

function ownerUids(bytes: Buffer, start: number): CleanedObject["ownerReferences"] {
  if (bytes[start] !== 0x5b) return undefined;
  return arrayElements(bytes, start).map(([at]) => {
    if (bytes[at] !== 0x7b) return null;
    const owner = new MemberCursor(bytes, at);
    let uid: string | undefined;
    while (owner.next()) if (owner.keyIs("uid")) uid = stringAt(bytes, owner.valueStart, owner.end);
    return { uid };
  });
}
