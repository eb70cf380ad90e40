import { CrdBackupError } from "../errors.ts";

type Requirement = (labels: Record<string, string>) => boolean;

// own labels only: `constructor` and `toString` are valid label keys, not Object.prototype's
const has = (l: Record<string, string>, key: string) => Object.hasOwn(l, key);
const get = (l: Record<string, string>, key: string) => (has(l, key) ? l[key] : undefined);

/**
 * Kubernetes label selectors (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`),
 * for filtering archived objects the way the API server filters live ones.
 */
export function parseSelector(selector: string): Requirement {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of selector) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  const reqs = parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map(requirement);
  return (labels) => reqs.every((r) => r(labels));
}

function requirement(text: string): Requirement {
  let m: RegExpExecArray | null;
  if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text))) {
    const [, key, op, list] = m as unknown as [string, string, string, string];
    const values = new Set(list.split(",").map((v) => v.trim()));
    return op === "in"
      ? (l) => has(l, key) && values.has(l[key]!)
      : (l) => !has(l, key) || !values.has(l[key]!);
  }
  if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(text))) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    return op === "!=" ? (l) => get(l, key) !== value : (l) => get(l, key) === value;
  }
  if ((m = /^!\s*([\w./-]+)$/.exec(text))) {
    const key = m[1]!;
    return (l) => !has(l, key);
  }
  if (/^[\w./-]+$/.test(text)) return (l) => has(l, text);
  throw new CrdBackupError("USAGE", `--selector: cannot parse "${text}"`);
}
