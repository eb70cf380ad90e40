/** RFC 6902 JSON Patch, applied to a copy: an object either takes every operation or none. */
import { isJsonObject, type JsonObject, type JsonValue } from "../kube/json.ts";
import { cloneJson, describeType, jsonEqual, PatchError } from "./json-value.ts";
import { arrayIndex, formatPointer, getAt } from "./pointer.ts";
import type { JsonPatchOperation } from "./types.ts";

type Container = JsonObject | JsonValue[];

/** The parent of `tokens` and the last token; the parent must exist (RFC 6902 section 4.1). */
function parentOf(doc: JsonValue, tokens: readonly string[], op: string): [Container, string] {
  const parent = getAt(doc, tokens.slice(0, -1));
  if (!Array.isArray(parent) && !isJsonObject(parent)) {
    throw new PatchError(
      `${op} ${formatPointer(tokens)}: ${formatPointer(tokens.slice(0, -1)) || "the root"} is ${describeType(parent)}, not an object or list`,
    );
  }
  return [parent, tokens[tokens.length - 1]!];
}

function add(doc: JsonValue, tokens: readonly string[], value: JsonValue, op = "add"): JsonValue {
  if (tokens.length === 0) return value;
  const [parent, last] = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, true);
    if (i === undefined)
      throw new PatchError(
        `${op} ${formatPointer(tokens)}: index ${last} is out of range (length ${parent.length})`,
      );
    parent.splice(i, 0, value);
  } else parent[last] = value;
  return doc;
}

function remove(doc: JsonValue, tokens: readonly string[], op = "remove"): [JsonValue, JsonValue] {
  if (tokens.length === 0) throw new PatchError(`${op}: cannot remove the whole object`);
  const [parent, last] = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, false);
    if (i === undefined) throw new PatchError(`${op} ${formatPointer(tokens)}: no such list item`);
    return [doc, parent.splice(i, 1)[0]!];
  }
  if (!Object.hasOwn(parent, last))
    throw new PatchError(`${op} ${formatPointer(tokens)}: the path does not exist`);
  const old = parent[last]!;
  delete parent[last];
  return [doc, old];
}

function isPrefix(prefix: readonly string[], of: readonly string[]): boolean {
  return prefix.length < of.length && prefix.every((t, i) => of[i] === t);
}

/** Applies every operation in order to a copy of `doc`; throws PatchError naming the one that failed. */
export function applyJsonPatch(doc: JsonValue, ops: readonly JsonPatchOperation[]): JsonValue {
  let out = cloneJson(doc);
  for (const o of ops) {
    const where = formatPointer(o.path);
    switch (o.op) {
      case "add":
        out = add(out, o.path, cloneJson(o.value!));
        break;
      case "remove":
        out = remove(out, o.path)[0];
        break;
      case "replace":
        if (o.path.length === 0) {
          out = cloneJson(o.value!);
          break;
        }
        if (getAt(out, o.path) === undefined)
          throw new PatchError(`replace ${where}: the path does not exist`);
        out = add(remove(out, o.path, "replace")[0], o.path, cloneJson(o.value!), "replace");
        break;
      case "move": {
        if (isPrefix(o.from!, o.path))
          throw new PatchError(`move ${formatPointer(o.from!)} to ${where}: cannot move a value into itself`);
        if (getAt(out, o.from!) === undefined)
          throw new PatchError(`move from ${formatPointer(o.from!)}: the path does not exist`);
        const [rest, value] = remove(out, o.from!, "move");
        out = add(rest, o.path, value, "move");
        break;
      }
      case "copy": {
        const value = getAt(out, o.from!);
        if (value === undefined)
          throw new PatchError(`copy from ${formatPointer(o.from!)}: the path does not exist`);
        out = add(out, o.path, cloneJson(value), "copy");
        break;
      }
      case "test": {
        const value = getAt(out, o.path);
        if (value === undefined) throw new PatchError(`test ${where}: the path does not exist`, true);
        if (!jsonEqual(value, o.value)) throw new PatchError(`test ${where}: the value differs`, true);
        break;
      }
    }
  }
  return out;
}
