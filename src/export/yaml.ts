/**
 * A small YAML emitter for JSON values, so exported manifests are exact: numbers are written as
 * their JSON text (a RawJSON value's text byte for byte, so int64 values beyond 2^53 and `1.0e3`
 * survive), and every string comes back as the same string from a YAML 1.2 reader and from the
 * YAML 1.1 rules kubectl's reader still applies (`yes`, `on`, `0x1F`, `1e3`, `12:30` ...).
 *
 * Style: block mappings, sequences at their key's indentation (as `kubectl get -o yaml` writes
 * them), no line folding. A string is written plain only when it cannot be read as anything else,
 * as a block literal (`|`) when it has several lines and nothing a literal cannot carry, and
 * double-quoted otherwise. Invisible and format characters (control, bidi, zero-width, BOM, NBSP)
 * are always escaped, so a reviewer sees them.
 */
import { CrdBackupError } from "../errors.ts";
import type { JsonValue } from "../json/json.ts";

/** Deeper values are refused: indentation grows with depth, and the emitter recurses. */
export const MAX_DEPTH = 1000;

/** YAML limits implicit keys to 1024 characters; longer keys are written as explicit `? key` entries. */
const MAX_IMPLICIT_KEY = 1000;

/** Words YAML 1.1 or 1.2 reads as booleans, null or special floats, in any letter case. */
const RESERVED_WORDS = new Set(["y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf"]);

/**
 * Plain (unquoted) strings: starting with a letter, `_` or `/` (never an indicator, a digit, a sign
 * or a dot), then printable ASCII or visible non-ASCII characters (letters, marks, numbers,
 * punctuation, symbols). `: `, ` #`, a final `:` and a final space are ruled out separately.
 */
const PLAIN = /^[A-Za-z_/\p{L}][\x20-\x7e\p{L}\p{M}\p{N}\p{P}\p{S}]*$/u;
const PLAIN_BREAKERS = /: | #|[: ]$/;
/** Quantities such as `10Gi`, `500m`, `30s`: digits then letters, the letters not starting an exponent or a radix. */
const PLAIN_QUANTITY = /^[0-9]+[ac-dfg-np-wyzAC-DFG-NP-WYZ][A-Za-z]*$/;

/** Characters a double-quoted scalar escapes: quotes, backslashes, and everything invisible. */
const ESCAPED = /["\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u00a0\ufffe\uffff]/gu;
/** Characters a block literal cannot carry (it has no escapes); newline and tab are content. */
const NOT_IN_LITERAL = /(?![\n\t])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u00a0\ufffe\uffff]/u;

const NAMED_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\0": "\\0",
  "\x07": "\\a",
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\v": "\\v",
  "\f": "\\f",
  "\r": "\\r",
  "\x1b": "\\e",
};

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/;

function escapeChar(c: string): string {
  const named = NAMED_ESCAPES[c];
  if (named !== undefined) return named;
  const cp = c.codePointAt(0)!;
  const hex = cp.toString(16).toUpperCase();
  if (cp <= 0xff) return `\\x${hex.padStart(2, "0")}`;
  if (cp <= 0xffff) return `\\u${hex.padStart(4, "0")}`;
  return `\\U${hex.padStart(8, "0")}`;
}

export function doubleQuoted(s: string): string {
  return `"${s.replace(ESCAPED, escapeChar)}"`;
}

/** Whether `s` reads back as the same string when written without quotes. */
export function isPlainSafe(s: string): boolean {
  if (PLAIN_QUANTITY.test(s)) return true;
  return PLAIN.test(s) && !PLAIN_BREAKERS.test(s) && !RESERVED_WORDS.has(s.toLowerCase());
}

/**
 * The header and lines of a block literal for a multi-line string, or undefined when a literal
 * cannot carry it exactly or could be damaged unseen: no escapes exist in literals, and editors and
 * git hooks strip trailing whitespace, so a line that ends in a space or a tab goes double-quoted.
 */
function blockLiteral(s: string): { header: string; lines: string[] } | undefined {
  if (!s.includes("\n") || NOT_IN_LITERAL.test(s)) return undefined;
  const body = s.replace(/\n+$/, "");
  if (body === "") return undefined; // only newlines: a literal would need a content line
  const lines = body.split("\n");
  if (lines.some((l) => l.endsWith(" ") || l.endsWith("\t"))) return undefined;
  const trailing = s.length - body.length;
  const chomp = trailing === 0 ? "-" : trailing === 1 ? "" : "+";
  // the indentation is detected from the first line unless given; give it when that line starts blank
  const indicator = lines[0] === "" || lines[0]!.startsWith(" ") ? "2" : "";
  for (let i = 1; i < trailing; i++) lines.push("");
  return { header: `|${indicator}${chomp}`, lines };
}

function scalar(value: JsonValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return JSON.stringify(value);
  if (typeof value === "string") return isPlainSafe(value) ? value : doubleQuoted(value);
  if (JSON.isRawJSON(value)) {
    if (JSON_NUMBER.test(value.rawJSON)) return value.rawJSON;
    return scalar(JSON.parse(value.rawJSON) as JsonValue); // a raw string, boolean or null
  }
  if (Array.isArray(value)) return "[]";
  return "{}";
}

function isBlockCollection(value: JsonValue): value is JsonValue[] | { [key: string]: JsonValue } {
  if (typeof value !== "object" || value === null || JSON.isRawJSON(value)) return false;
  return Array.isArray(value) ? value.length > 0 : Object.keys(value).length > 0;
}

class Emitter {
  readonly out: string[] = [];

  private pad(indent: number): string {
    return " ".repeat(indent);
  }

  /** A value after `key:` or `-`, the line so far ending right before it; `indent` is the literal's parent's. */
  private inline(value: JsonValue, indent: number): boolean {
    if (typeof value === "string") {
      const literal = isPlainSafe(value) ? undefined : blockLiteral(value);
      if (literal) {
        this.out.push(" ", literal.header, "\n");
        const pad = this.pad(indent + 2);
        for (const line of literal.lines) this.out.push(line === "" ? "\n" : `${pad}${line}\n`);
        return true;
      }
    }
    if (isBlockCollection(value)) return false;
    this.out.push(" ", scalar(value), "\n");
    return true;
  }

  /** A non-empty mapping or sequence at `indent`; its first line continues the current one. */
  block(value: JsonValue[] | { [key: string]: JsonValue }, indent: number, depth: number): void {
    if (depth > MAX_DEPTH) {
      throw new CrdBackupError("ARCHIVE_INVALID", `a value nests deeper than ${MAX_DEPTH} levels`);
    }
    const pad = this.pad(indent);
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        this.out.push(i === 0 ? "-" : `${pad}-`);
        if (this.inline(item, indent)) return;
        this.out.push(" ");
        this.block(item as JsonValue[], indent + 2, depth + 1);
      });
      return;
    }
    Object.keys(value).forEach((key, i) => {
      const item = value[key]!;
      const text = isPlainSafe(key) ? key : doubleQuoted(key);
      if (i > 0) this.out.push(pad);
      const explicit = text.length > MAX_IMPLICIT_KEY;
      this.out.push(explicit ? `? ${text}\n${pad}:` : `${text}:`);
      if (this.inline(item, indent)) return;
      // sequences sit at their key's indentation, except after an explicit key's `:`
      const inner = Array.isArray(item) && !explicit ? indent : indent + 2;
      this.out.push("\n", this.pad(inner));
      this.block(item as JsonValue[], inner, depth + 1);
    });
  }
}

/** `value` as a YAML document (no `---`), ending with a newline. */
export function toYaml(value: JsonValue): string {
  const emitter = new Emitter();
  if (isBlockCollection(value)) emitter.block(value, 0, 1);
  else if (typeof value === "string" && !isPlainSafe(value)) emitter.out.push(doubleQuoted(value), "\n");
  else emitter.out.push(scalar(value), "\n");
  return emitter.out.join("");
}

/** Throws when `value` nests deeper than MAX_DEPTH (checked before JSON output, which recurses too). */
export function checkDepth(value: JsonValue, depth = 1): void {
  if (typeof value !== "object" || value === null || JSON.isRawJSON(value)) return;
  if (depth > MAX_DEPTH) {
    throw new CrdBackupError("ARCHIVE_INVALID", `a value nests deeper than ${MAX_DEPTH} levels`);
  }
  for (const item of Array.isArray(value) ? value : Object.values(value)) checkDepth(item, depth + 1);
}
