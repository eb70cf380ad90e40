/**
 * RFC 6902 JSON Patch. The document is never mutated: each operation copies the containers on its
 * path and shares everything else, so an object either takes every operation or none, and the
 * diff against the stored object skips the untouched subtrees by identity.
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";
import { cloneJson, describeType, jsonEqual, PatchError } from "./json-value.ts";
import { arrayIndex, formatPointer, getAt } from "./pointer.ts";
import type { JsonPatchOperation } from "./types.ts";

type Container = JsonObject | JsonValue[];
type Edit = (parent: Container, last: string) => void;

/** A copy of `doc` in which `edit` changed a copy of the parent of `tokens` (which must exist, RFC 6902 section 4.1). */
function editParent(doc: JsonValue, tokens: readonly string[], op: string, edit: Edit): JsonValue {
  const walk = (node: JsonValue | undefined, depth: number): JsonValue => {
    if (depth === tokens.length - 1) {
      if (!Array.isArray(node) && !isJsonObject(node)) {
        throw new PatchError(
          `${op} ${formatPointer(tokens)}: ${formatPointer(tokens.slice(0, -1)) || "the root"} is ${describeType(node)}, not an object or list`,
        );
      }
      const copy: Container = Array.isArray(node) ? [...node] : { ...node };
      edit(copy, tokens[depth]!);
      return copy;
    }
    const t = tokens[depth]!;
    if (Array.isArray(node)) {
      const i = arrayIndex(t, node.length, false);
      if (i === undefined) return walk(undefined, tokens.length - 1); // reports the missing parent
      const copy = [...node];
      copy[i] = walk(node[i], depth + 1);
      return copy;
    }
    if (isJsonObject(node) && Object.hasOwn(node, t)) return { ...node, [t]: walk(node[t], depth + 1) };
    return walk(undefined, tokens.length - 1);
  };
  return walk(doc, 0);
}

function add(doc: JsonValue, tokens: readonly string[], value: JsonValue, op = "add"): JsonValue {
  if (tokens.length === 0) return value;
  return editParent(doc, tokens, op, (parent, last) => {
    if (Array.isArray(parent)) {
      const i = arrayIndex(last, parent.length, true);
      if (i === undefined)
        throw new PatchError(
          `${op} ${formatPointer(tokens)}: index ${last} is out of range (length ${parent.length})`,
        );
      parent.splice(i, 0, value);
    } else parent[last] = value;
  });
}

function remove(doc: JsonValue, tokens: readonly string[], op = "remove"): JsonValue {
  if (tokens.length === 0) throw new PatchError(`${op}: cannot remove the whole object`);
  return editParent(doc, tokens, op, (parent, last) => {
    if (Array.isArray(parent)) {
      const i = arrayIndex(last, parent.length, false);
      if (i === undefined) throw new PatchError(`${op} ${formatPointer(tokens)}: no such list item`);
      parent.splice(i, 1);
    } else if (Object.hasOwn(parent, last)) delete parent[last];
    else throw new PatchError(`${op} ${formatPointer(tokens)}: the path does not exist`);
  });
}

function isPrefix(prefix: readonly string[], of: readonly string[]): boolean {
  return prefix.length < of.length && prefix.every((t, i) => of[i] === t);
}

/** Applies every operation in order; throws PatchError naming the one that failed. */
export function applyJsonPatch(doc: JsonValue, ops: readonly JsonPatchOperation[]): JsonValue {
  let out = doc;
  for (const o of ops) {
    const where = formatPointer(o.path);
    switch (o.op) {
      case "add":
        out = add(out, o.path, cloneJson(o.value!));
        break;
      case "remove":
        out = remove(out, o.path);
        break;
      case "replace":
        if (o.path.length === 0) {
          out = cloneJson(o.value!);
          break;
        }
        if (getAt(out, o.path) === undefined)
          throw new PatchError(`replace ${where}: the path does not exist`);
        out = add(remove(out, o.path, "replace"), o.path, cloneJson(o.value!), "replace");
        break;
      case "move": {
        if (isPrefix(o.from!, o.path))
          throw new PatchError(`move ${formatPointer(o.from!)} to ${where}: cannot move a value into itself`);
        const value = getAt(out, o.from!);
        if (value === undefined)
          throw new PatchError(`move from ${formatPointer(o.from!)}: the path does not exist`);
        out = add(remove(out, o.from!, "move"), o.path, value, "move");
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
