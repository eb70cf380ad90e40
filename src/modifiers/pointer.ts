/** JSON Pointers (RFC 6901): parsed once when the rules are read, walked per object. */
import { isJsonObject, type JsonValue } from "../json/json.ts";

/** The reference tokens of `pointer`, or a message saying why it is not one. */
export function parsePointer(pointer: string): string[] | { error: string } {
  if (pointer === "") return [];
  if (!pointer.startsWith("/"))
    return { error: `"${pointer}" is not a JSON pointer: it must start with "/"` };
  const tokens = pointer.slice(1).split("/");
  for (const t of tokens) {
    if (/~(?![01])/.test(t))
      return { error: `"${pointer}" is not a JSON pointer: "~" must be followed by 0 or 1` };
  }
  return tokens.map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

export function formatPointer(tokens: readonly string[]): string {
  return tokens.map((t) => "/" + t.replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

/** An array index token: digits without leading zeros (RFC 6901 section 4). */
export function arrayIndex(token: string, length: number, allowEnd: boolean): number | undefined {
  if (allowEnd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
  const i = Number(token);
  return i < length || (allowEnd && i === length) ? i : undefined;
}

/** The value at `tokens`, or undefined when the path does not exist. */
export function getAt(doc: JsonValue, tokens: readonly string[]): JsonValue | undefined {
  let cur: JsonValue | undefined = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      const i = arrayIndex(t, cur.length, false);
      cur = i === undefined ? undefined : cur[i];
    } else if (isJsonObject(cur)) {
      cur = Object.hasOwn(cur, t) ? cur[t] : undefined;
    } else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}
