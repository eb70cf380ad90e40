import { CrdBackupError } from "../errors.ts";

type Requirement = (labels: Record<string, string>) => boolean;

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
    return op === "in" ? (l) => key in l && values.has(l[key]!) : (l) => !(key in l) || !values.has(l[key]!);
  }
  if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(text))) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    return op === "!=" ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  if ((m = /^!\s*([\w./-]+)$/.exec(text))) {
    const key = m[1]!;
    return (l) => !(key in l);
  }
  if (/^[\w./-]+$/.test(text)) return (l) => text in l;
  throw new CrdBackupError("USAGE", `--selector: cannot parse "${text}"`);
}
