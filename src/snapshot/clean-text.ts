import { objectMembers, skipWhitespace, withoutMembers } from "../kube/json-scan.ts";
import { SERVER_OWNED_METADATA } from "./clean.ts";

const SERVER_OWNED = new Set<string>(SERVER_OWNED_METADATA);

export interface CleanedText {
  /** The object as the API server sent it, less server-owned metadata (and status when dropped). */
  body: string;
  name: string;
  namespace: string | undefined;
  uid: string | undefined;
}

/**
 * cleanObject on text: the object at `start` with server-owned metadata cut out and every other
 * byte kept, so values are stored exactly as served (int64 beyond 2^53, escapes, key order).
 */
export function cleanObjectText(
  text: string,
  start: number,
  options: { dropStatus?: boolean } = {},
): CleanedText {
  const { members } = objectMembers(text, skipWhitespace(text, start));
  let name = "";
  let namespace: string | undefined;
  let uid: string | undefined;
  const parts: string[] = [];
  for (const m of members) {
    if (m.key === "status" && options.dropStatus) continue;
    if (m.key !== "metadata") {
      parts.push(text.slice(m.start, m.end));
      continue;
    }
    const meta = objectMembers(text, m.valueStart).members;
    for (const f of meta) {
      if (f.key === "name" || f.key === "namespace" || f.key === "uid") {
        const value = JSON.parse(text.slice(f.valueStart, f.end)) as unknown;
        if (typeof value !== "string") continue;
        if (f.key === "name") name = value;
        else if (f.key === "namespace") namespace = value;
        else uid = value;
      }
    }
    parts.push(text.slice(m.start, m.valueStart) + withoutMembers(text, meta, SERVER_OWNED));
  }
  return { body: `{${parts.join(",")}}`, name, namespace, uid };
}
