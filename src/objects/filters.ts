import { CrdBackupError } from "../errors.ts";

/** Which resources and objects a snapshot (or restore) takes. Empty include lists mean "all". */
export interface Filters {
  includeGroups: string[];
  excludeGroups: string[];
  /** Matched against `plural.group` and against `plural` alone. */
  includeResources: string[];
  excludeResources: string[];
  includeNamespaces: string[];
  excludeNamespaces: string[];
  /** A label selector, applied by the API server. */
  selector?: string;
  /**
   * Object names (globs, `--name`): only objects whose name matches one. Absent or empty: every
   * name. Restore, export, diff and drill apply it to archived objects (entry-filter.ts); a
   * snapshot never records it.
   */
  names?: string[];
}

const cache = new Map<string, RegExp>();

/** Shell-style globs: `*` matches any run of characters, `?` one; nothing else is special. */
export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (!re) {
    const body = glob
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".");
    re = new RegExp(`^${body}$`);
    cache.set(glob, re);
  }
  return re;
}

function matchesAny(value: string, globs: string[]): boolean {
  return globs.some((g) => globToRegExp(g).test(value));
}

function selected(values: string[], include: string[], exclude: string[]): boolean {
  if (include.length > 0 && !values.some((v) => matchesAny(v, include))) return false;
  return !values.some((v) => matchesAny(v, exclude));
}

export function resourceSelected(f: Filters, group: string, plural: string): boolean {
  return (
    selected([group], f.includeGroups, f.excludeGroups) &&
    selected([`${plural}.${group}`, plural], f.includeResources, f.excludeResources)
  );
}

/** Cluster-scoped objects (namespace undefined) are not subject to namespace filters. */
export function namespaceSelected(f: Filters, namespace: string | undefined): boolean {
  return namespace === undefined || selected([namespace], f.includeNamespaces, f.excludeNamespaces);
}

/** Whether `--name` globs select an object's name (every name without any). */
export function nameSelected(f: Pick<Filters, "names">, name: string): boolean {
  return !f.names?.length || matchesAny(name, f.names);
}

/** Splits repeated and comma-separated flag values: `--include-groups a,b --include-groups c`. */
export function splitList(values: string[] | string | undefined): string[] {
  const list = Array.isArray(values) ? values : values ? [values] : [];
  return list
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

export function validateSelector(selector: string | undefined): string | undefined {
  if (selector !== undefined && selector.trim() === "") {
    throw new CrdBackupError("USAGE", "--selector is empty");
  }
  return selector;
}
