/**
 * Reads resource modifier files strictly, before anything is read from storage: every problem is
 * a USAGE error naming `file:line` (an unknown key, a wrong version, a bad regular expression, a
 * bad JSON pointer, a rule with no or two kinds of patch). Velero's `version: v1` takes exactly
 * Velero's keys; `version: crd-backup.io/v1` adds `replaceRegex` and `drop`.
 */
import { readFile } from "node:fs/promises";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { CrdBackupError } from "../errors.ts";
import type { JsonValue } from "../json/json.ts";
import { compileGlob } from "./glob.ts";
import { parsePointer } from "./pointer.ts";
import {
  EXTENDED_VERSION,
  VELERO_VERSION,
  type Conditions,
  type JsonPatchOp,
  type JsonPatchOperation,
  type LabelRequirement,
  type ModifierRule,
  type ModifierSet,
  type ReplaceRegex,
  type RuleAction,
} from "./types.ts";

const EXTENSION_KEYS = new Set(["replaceRegex", "drop"]);
const PATCH_KINDS = ["patches", "mergePatches", "strategicPatches", "replaceRegex", "drop"] as const;
const OPS: JsonPatchOp[] = ["add", "remove", "replace", "move", "copy", "test"];

class Reader {
  readonly file: string;
  readonly extended: boolean;
  private readonly lines: LineCounter;
  private readonly doc: Document;

  constructor(file: string, doc: Document, lines: LineCounter, extended: boolean) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
    this.extended = extended;
  }

  line(node: Node | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : this.lines.linePos(offset).line;
  }

  fail(node: Node | null | undefined, message: string): never {
    const line = this.line(node);
    throw new CrdBackupError("USAGE", `${this.file}:${line}: ${message}`, { file: this.file, line });
  }

  resolve(node: unknown): Node | undefined {
    if (isAlias(node)) return this.resolve(node.resolve(this.doc));
    return (node ?? undefined) as Node | undefined;
  }

  /** The entries of a mapping, checking that every key is one of `allowed`. */
  map(
    node: Node | undefined,
    what: string,
    allowed: string[] | "any",
    at: Node | undefined = node,
  ): Map<string, Node> {
    if (!isMap(node)) this.fail(node ?? at, `${what} must be a mapping`);
    const out = new Map<string, Node>();
    for (const pair of node.items) {
      const key = this.resolve(pair.key);
      const name = isScalar(key) ? String(key.value) : undefined;
      if (name === undefined) this.fail(key ?? node, `${what}: keys must be plain names`);
      if (allowed !== "any" && !allowed.includes(name)) {
        if (EXTENSION_KEYS.has(name) && !this.extended)
          this.fail(
            key,
            `${what}: unknown key "${name}": it is a crd-backup extension; declare version: ${EXTENDED_VERSION}`,
          );
        this.fail(key, `${what}: unknown key "${name}" (expected ${allowed.join(", ")})`);
      }
      out.set(name, this.resolve(pair.value) ?? (key as Node));
    }
    return out;
  }

  seq(node: Node | undefined, what: string): Node[] {
    if (!isSeq(node)) this.fail(node, `${what} must be a list`);
    return node.items.map((i) => this.resolve(i) ?? node);
  }

  string(node: Node | undefined, what: string): string {
    if (!isScalar(node) || node.value === null || typeof node.value === "object")
      this.fail(node, `${what} must be a string`);
    return String(node.value);
  }

  value(node: Node | undefined): JsonValue {
    return node ? ((node.toJS(this.doc) as JsonValue | undefined) ?? null) : null;
  }

  regex(node: Node | undefined, what: string, flags = "u"): RegExp {
    const text = this.string(node, what);
    try {
      return new RegExp(text, flags);
    } catch (e) {
      return this.fail(node, `${what}: bad regular expression: ${(e as Error).message}`);
    }
  }

  glob(node: Node | undefined, what: string, separator: string): RegExp {
    const g = compileGlob(this.string(node, what), separator);
    return g instanceof RegExp ? g : this.fail(node, `${what}: bad ${g.error}`);
  }

  pointer(node: Node | undefined, what: string): string[] {
    const p = parsePointer(this.string(node, what));
    return Array.isArray(p) ? p : this.fail(node, `${what}: ${p.error}`);
  }
}

/**
 * Velero's value text, as its JSON Patch writer reads it: `"..."` in the text is a string,
 * `null`, `true`, `false`, numbers and `{...}` / `[...]` are JSON, anything else a string.
 */
function veleroValue(r: Reader, node: Node | undefined): JsonValue {
  if (node === undefined) return "";
  if (!isScalar(node)) return r.value(node);
  if (typeof node.value !== "string") return r.value(node);
  const text = node.value;
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) return text.slice(1, -1);
  if (text === "null") return null;
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === "true";
  if (text.startsWith("{") || text.startsWith("[")) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch (e) {
      r.fail(node, `value: not valid JSON: ${(e as Error).message}`);
    }
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  return text;
}

function conditions(r: Reader, node: Node | undefined, where: string): Conditions {
  const c = r.map(node, `${where}.conditions`, [
    "groupResource",
    "resourceNameRegex",
    "namespaces",
    "labelSelector",
    "matches",
  ]);
  if (!c.has("groupResource")) r.fail(node, `${where}.conditions: groupResource is required`);
  const out: Conditions = {
    groupResource: r.glob(c.get("groupResource"), `${where}.conditions.groupResource`, "."),
    namespaces: [],
    matches: [],
  };
  if (c.has("resourceNameRegex"))
    out.resourceNameRegex = r.regex(c.get("resourceNameRegex"), `${where}.conditions.resourceNameRegex`);
  if (c.has("namespaces"))
    out.namespaces = r
      .seq(c.get("namespaces"), `${where}.conditions.namespaces`)
      .map((n) => r.glob(n, `${where}.conditions.namespaces`, "/"));
  if (c.has("labelSelector")) {
    const at = `${where}.conditions.labelSelector`;
    const ls = r.map(c.get("labelSelector"), at, ["matchLabels", "matchExpressions"]);
    const matchLabels: Record<string, string> = {};
    if (ls.has("matchLabels")) {
      for (const [k, v] of r.map(ls.get("matchLabels"), `${at}.matchLabels`, "any").entries())
        matchLabels[k] = r.string(v, `${at}.matchLabels.${k}`);
    }
    const matchExpressions: LabelRequirement[] = [];
    if (ls.has("matchExpressions")) {
      for (const e of r.seq(ls.get("matchExpressions"), `${at}.matchExpressions`)) {
        const m = r.map(e, `${at}.matchExpressions[]`, ["key", "operator", "values"]);
        const operator = r.string(m.get("operator"), `${at}.matchExpressions[].operator`);
        if (!["In", "NotIn", "Exists", "DoesNotExist"].includes(operator))
          r.fail(m.get("operator"), `${at}: operator "${operator}" is not In, NotIn, Exists or DoesNotExist`);
        const values = m.has("values")
          ? r.seq(m.get("values"), `${at}.matchExpressions[].values`).map((v) => r.string(v, "values[]"))
          : [];
        if ((operator === "In" || operator === "NotIn") && values.length === 0)
          r.fail(e, `${at}: ${operator} needs values`);
        if ((operator === "Exists" || operator === "DoesNotExist") && values.length > 0)
          r.fail(e, `${at}: ${operator} takes no values`);
        matchExpressions.push({
          key: r.string(m.get("key"), `${at}.matchExpressions[].key`),
          operator: operator as LabelRequirement["operator"],
          values,
        });
      }
    }
    out.labelSelector = { matchLabels, matchExpressions };
  }
  if (c.has("matches")) {
    for (const m of r.seq(c.get("matches"), `${where}.conditions.matches`)) {
      const fields = r.map(m, `${where}.conditions.matches[]`, ["path", "value"]);
      if (!fields.has("path")) r.fail(m, `${where}.conditions.matches[]: path is required`);
      out.matches.push({
        path: r.pointer(fields.get("path"), `${where}.conditions.matches[].path`),
        value: veleroValue(r, fields.get("value")),
      });
    }
  }
  return out;
}

function jsonPatch(r: Reader, node: Node, where: string): JsonPatchOperation {
  const p = r.map(node, where, ["operation", "path", "from", "value"]);
  if (!p.has("operation")) r.fail(node, `${where}: operation is required`);
  const op = r.string(p.get("operation"), `${where}.operation`).toLowerCase() as JsonPatchOp;
  if (!OPS.includes(op))
    r.fail(p.get("operation"), `${where}: unsupported operation "${op}" (expected ${OPS.join(", ")})`);
  if (!p.has("path")) r.fail(node, `${where}: path is required`);
  const out: JsonPatchOperation = { op, path: r.pointer(p.get("path"), `${where}.path`) };
  if (op === "move" || op === "copy") {
    if (!p.has("from")) r.fail(node, `${where}: ${op} needs from`);
    out.from = r.pointer(p.get("from"), `${where}.from`);
  }
  if (op === "add" || op === "replace" || op === "test") out.value = veleroValue(r, p.get("value"));
  return out;
}

function patchData(r: Reader, node: Node, where: string): JsonValue {
  const p = r.map(node, where, ["patchData"]);
  if (!p.has("patchData")) r.fail(node, `${where}: patchData is required`);
  const text = r.string(p.get("patchData"), `${where}.patchData`);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0)
    r.fail(p.get("patchData"), `${where}.patchData: ${doc.errors[0]!.message.split("\n")[0]}`);
  const value = doc.toJSON() as JsonValue;
  if (value === null || typeof value !== "object" || Array.isArray(value))
    r.fail(p.get("patchData"), `${where}.patchData must hold an object (YAML or JSON)`);
  return value;
}

function replaceRegex(r: Reader, node: Node, where: string): ReplaceRegex {
  const p = r.map(node, where, ["path", "paths", "pattern", "replacement"]);
  if (p.has("path") === p.has("paths")) r.fail(node, `${where}: give either path or paths`);
  if (!p.has("pattern")) r.fail(node, `${where}: pattern is required`);
  if (!p.has("replacement")) r.fail(node, `${where}: replacement is required`);
  const out: ReplaceRegex = {
    pattern: r.regex(p.get("pattern"), `${where}.pattern`, "gu"),
    replacement: r.string(p.get("replacement"), `${where}.replacement`),
  };
  if (p.has("path")) out.path = r.pointer(p.get("path"), `${where}.path`);
  else out.paths = r.seq(p.get("paths"), `${where}.paths`).map((g) => r.glob(g, `${where}.paths[]`, "/"));
  return out;
}

function action(r: Reader, rule: Map<string, Node>, node: Node, where: string): RuleAction {
  const present = PATCH_KINDS.filter((k) => rule.has(k));
  if (present.length !== 1)
    r.fail(
      node,
      `${where}: give exactly one of ${PATCH_KINDS.filter((k) => r.extended || !EXTENSION_KEYS.has(k)).join(", ")}${present.length ? ` (found ${present.join(", ")})` : ""}`,
    );
  const kind = present[0]!;
  const body = rule.get(kind);
  if (kind === "drop") {
    if (!isScalar(body) || body.value !== true) r.fail(body, `${where}.drop must be true`);
    return { kind: "drop" };
  }
  const items = r.seq(body, `${where}.${kind}`);
  if (items.length === 0) r.fail(body, `${where}.${kind} is empty`);
  if (kind === "patches")
    return { kind, ops: items.map((n, i) => jsonPatch(r, n, `${where}.patches[${i}]`)) };
  if (kind === "replaceRegex")
    return { kind, replacements: items.map((n, i) => replaceRegex(r, n, `${where}.replaceRegex[${i}]`)) };
  return { kind, patches: items.map((n, i) => patchData(r, n, `${where}.${kind}[${i}]`)) };
}

/** Parses one file's text; rule indexes continue from `first`. */
export function parseModifiers(file: string, text: string, first = 0): ModifierRule[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = lines.linePos(e.pos[0]).line;
    throw new CrdBackupError("USAGE", `${file}:${line}: not valid YAML: ${e.message.split("\n")[0]}`, {
      file,
      line,
    });
  }
  const root = doc.contents as Node | null;
  const probe = new Reader(file, doc, lines, true);
  const top = probe.map(root ?? undefined, "the file", ["version", "resourceModifierRules"]);
  const versionNode = top.get("version");
  if (!versionNode)
    probe.fail(root, `version is required (${VELERO_VERSION}, or ${EXTENDED_VERSION} for the extensions)`);
  const version = probe.string(versionNode, "version");
  const extended = version === EXTENDED_VERSION;
  if (!extended && version.toLowerCase() !== VELERO_VERSION)
    probe.fail(
      versionNode,
      `unsupported version "${version}": use ${VELERO_VERSION} (Velero's format) or ${EXTENDED_VERSION} (with the replaceRegex and drop extensions)`,
    );
  const r = new Reader(file, doc, lines, extended);
  const rulesNode = top.get("resourceModifierRules");
  const rules = rulesNode ? r.seq(rulesNode, "resourceModifierRules") : [];
  if (rules.length === 0) r.fail(rulesNode ?? root, "resourceModifierRules cannot be empty");
  const keys = [
    "conditions",
    "patches",
    "mergePatches",
    "strategicPatches",
    ...(extended ? ["replaceRegex", "drop"] : []),
  ];
  return rules.map((node, i) => {
    const where = `rule ${first + i}`;
    const rule = r.map(node, where, keys);
    if (!rule.has("conditions")) r.fail(node, `${where}: conditions is required`);
    return {
      index: first + i,
      source: `${file}:${r.line(node)}`,
      conditions: conditions(r, rule.get("conditions"), where),
      action: action(r, rule, node, where),
      strictTest: extended,
    };
  });
}

/** Reads and parses the files in order (what `--resource-modifiers` gives); rules are numbered across them. */
export async function loadModifiers(files: readonly string[]): Promise<ModifierSet | undefined> {
  if (files.length === 0) return undefined;
  const rules: ModifierRule[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new CrdBackupError(
        "USAGE",
        `--resource-modifiers ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
        { file },
      );
    }
    rules.push(...parseModifiers(file, text, rules.length));
  }
  return { files: [...files], rules };
}
