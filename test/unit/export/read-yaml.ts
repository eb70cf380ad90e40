/**
 * Reads exported YAML back to JSON values with an independent parser (eemeli/yaml), losslessly:
 * a plain scalar whose source text is a JSON number becomes JSON.rawJSON(that text), so
 * `9007199254740993` and `1.0e3` come back byte for byte. Anything YAML resolved to a type JSON
 * does not have (a timestamp, a number written `0x1F`, a non-string key) is an error: it means the
 * emitter left a string unquoted that should have been quoted.
 */
import { isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";
import type { JsonValue } from "../../../src/json/json.ts";

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/;

function toJson(node: Node | null | undefined, where: string): JsonValue {
  if (node === null || node === undefined) return null;
  if (isMap(node)) {
    const out: { [key: string]: JsonValue } = {};
    for (const pair of node.items) {
      const key = toJson(pair.key as Node, where);
      if (typeof key !== "string") throw new Error(`${where}: a key read back as ${JSON.stringify(key)}`);
      Object.defineProperty(out, key, {
        value: toJson(pair.value as Node, `${where}.${key}`),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  if (isSeq(node)) return node.items.map((item, i) => toJson(item as Node, `${where}[${i}]`));
  if (isScalar(node)) {
    const token = node.srcToken as { type?: string; source?: string } | undefined;
    if (token?.type === "scalar" && token.source !== undefined && JSON_NUMBER.test(token.source)) {
      return JSON.rawJSON(token.source);
    }
    const v = node.value;
    if (v === null || typeof v === "string" || typeof v === "boolean") return v;
    throw new Error(`${where}: read back as ${typeof v} ${String(v)} from ${JSON.stringify(token?.source)}`);
  }
  throw new Error(`${where}: unexpected YAML node`);
}

/** The YAML document in `text` as JSON; `version: "1.1"` reads it with YAML 1.1's rules (yes/no/on/off, 0755, 1:20, dates). */
export function readYaml(text: string, version: "1.1" | "1.2" = "1.2"): JsonValue {
  const doc = parseDocument(text, { keepSourceTokens: true, intAsBigInt: true, uniqueKeys: true, version });
  if (doc.errors.length > 0) throw new Error(`YAML errors: ${doc.errors.map((e) => e.message).join("; ")}`);
  if (doc.warnings.length > 0)
    throw new Error(`YAML warnings: ${doc.warnings.map((e) => e.message).join("; ")}`);
  return toJson(doc.contents as Node, "$");
}

/** JSON text of a value, numbers as written: what two lossless values are compared by. */
export function jsonText(value: JsonValue): string {
  return JSON.stringify(value);
}
