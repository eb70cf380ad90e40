import { arrayElements, MemberCursor, skipWhitespace, stringAt } from "../kube/json-scan.ts";
import { SERVER_OWNED_METADATA } from "./clean.ts";

export interface CleanedText {
  /** The object as the API server sent it, less server-owned metadata (and status when dropped). */
  body: string;
  /** The index in the text after the object. */
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

/**
 * Members kept from an object, joined with commas: a run of members that the text already separates
 * with a single comma is copied as one slice.
 */
class Kept {
  readonly #text: string;
  #out = "";
  #runStart = -1;
  #runEnd = -1;

  constructor(text: string) {
    this.#text = text;
  }

  /** The member at text[start, end). */
  span(start: number, end: number): void {
    if (this.#runEnd >= 0 && start === this.#runEnd + 1 && this.#text.charCodeAt(this.#runEnd) === 0x2c) {
      this.#runEnd = end;
      return;
    }
    this.#flush();
    this.#runStart = start;
    this.#runEnd = end;
  }

  /** A member rebuilt as text. */
  piece(member: string): void {
    this.#flush();
    this.#out = this.#out === "" ? member : `${this.#out},${member}`;
  }

  /** The object: `{` the members `}`. */
  object(): string {
    this.#flush();
    return `{${this.#out}}`;
  }

  #flush(): void {
    if (this.#runEnd < 0) return;
    const run = this.#text.slice(this.#runStart, this.#runEnd);
    this.#out = this.#out === "" ? run : `${this.#out},${run}`;
    this.#runEnd = -1;
  }
}

/**
 * cleanObject on text: the object at `start` with server-owned metadata cut out and every other
 * byte kept, so values are stored exactly as served (int64 beyond 2^53, escapes, key order). It
 * reads the fields the archive index needs on the way, so nothing parses the object again.
 */
export function cleanObjectText(
  text: string,
  start: number,
  options: { dropStatus?: boolean } = {},
): CleanedText {
  const cleaned: CleanedText = {
    body: "",
    end: -1,
    name: "",
    namespace: undefined,
    uid: undefined,
    apiVersion: undefined,
    kind: undefined,
    ownerReferences: undefined,
  };
  const top = new MemberCursor(text, skipWhitespace(text, start));
  const kept = new Kept(text);
  while (top.next()) {
    if (options.dropStatus && top.keyIs("status")) continue;
    if (top.keyIs("metadata")) {
      kept.piece(text.slice(top.keyStart, top.valueStart) + cleanMetadata(text, top.valueStart, cleaned));
      continue;
    }
    if (top.keyIs("apiVersion")) cleaned.apiVersion = stringAt(text, top.valueStart, top.end);
    else if (top.keyIs("kind")) cleaned.kind = stringAt(text, top.valueStart, top.end);
    kept.span(top.keyStart, top.end);
  }
  cleaned.body = kept.object();
  cleaned.end = top.objectEnd;
  return cleaned;
}

function cleanMetadata(text: string, start: number, cleaned: CleanedText): string {
  const meta = new MemberCursor(text, start);
  const kept = new Kept(text);
  members: while (meta.next()) {
    if (meta.keyIs("name")) cleaned.name = stringAt(text, meta.valueStart, meta.end) ?? cleaned.name;
    else if (meta.keyIs("namespace"))
      cleaned.namespace = stringAt(text, meta.valueStart, meta.end) ?? cleaned.namespace;
    else if (meta.keyIs("uid")) cleaned.uid = stringAt(text, meta.valueStart, meta.end) ?? cleaned.uid;
    else if (meta.keyIs("ownerReferences")) cleaned.ownerReferences = ownerUids(text, meta.valueStart);
    for (const field of SERVER_OWNED_METADATA) if (meta.keyIs(field)) continue members;
    kept.span(meta.keyStart, meta.end);
  }
  return kept.object();
}

function ownerUids(text: string, start: number): CleanedText["ownerReferences"] {
  if (text.charCodeAt(start) !== 0x5b) return undefined;
  return arrayElements(text, start).map(([at]) => {
    if (text.charCodeAt(at) !== 0x7b) return null;
    const owner = new MemberCursor(text, at);
    let uid: string | undefined;
    while (owner.next()) if (owner.keyIs("uid")) uid = stringAt(text, owner.valueStart, owner.end);
    return { uid };
  });
}
