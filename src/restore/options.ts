import { CrdBackupError } from "../errors.ts";
import type { ModifierSet } from "../modifiers/types.ts";
import type { Filters } from "../objects/filters.ts";
import type { CrdPlan, ExistingPolicy, ResourceVersions } from "./types.ts";
import type { VersionMapping } from "./versions.ts";

export type { ExistingPolicy } from "./types.ts";

const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const EXISTING_POLICIES: readonly ExistingPolicy[] = ["skip", "update", "fail"];

export interface RestoreOptions {
  filters: Filters;
  /** Source namespace → target namespace. */
  namespaceMap: Map<string, string>;
  /** Prepended to every namespace that namespaceMap does not name (a drill's scratch namespaces). */
  namespacePrefix?: string;
  existing: ExistingPolicy;
  /** Per-resource overrides, keyed by `plural.group`. */
  existingFor: Map<string, ExistingPolicy>;
  restoreStatus: boolean;
  dryRun: boolean;
  /** How long to wait for each CRD to become Established and NamesAccepted. */
  waitTimeoutMs: number;
  concurrency: number;
  signal?: AbortSignal;
  /** Label added to everything the restore creates (a drill uses it to clean up). */
  createdLabel?: { key: string; value: string };
  /** Resource modifier rules (--resource-modifiers): applied to each stored object before anything else sees it. */
  modifiers?: ModifierSet;
  /**
   * --sync: make the selected objects equal to the source, deleting those it does not have
   * (restore/prune.ts); `crds`: also the CRDs it does not have (--sync-crds). Writes as
   * --existing update does, whatever `existing` says.
   */
  sync?: { crds: boolean };
  /** --version-map, by `plural.group`: objects archived at `from` are written through `to`. */
  versionMap?: Map<string, VersionMapping>;
  /**
   * Called with the finished plan, before anything is written (the CLI prints what it must show;
   * the short form `restore <resource>/<name>` refuses a plan without its object by throwing).
   */
  onPlan?: (plan: PlanView) => void;
  /**
   * Called with the source's object count once its manifest is read, before its verification pass
   * (the CLI chooses its garbage collection by it: cli/gc.ts).
   */
  onSourceSize?: (objects: number) => void;
}

/** What a plan shows before anything is written: the CRDs, the resources' version verdicts, the count. */
export interface PlanView {
  crds: CrdPlan[];
  resources: ReadonlyMap<string, { key: string; archivedVersion: string; versions?: ResourceVersions }>;
  objects: { count: number };
}

/** Where objects of each source namespace go: all an object's identity needs of the options. */
export type NamespaceMapping = Pick<RestoreOptions, "namespaceMap" | "namespacePrefix">;

function pair(flag: string, value: string): [string, string] {
  const i = value.indexOf("=");
  if (i <= 0 || i === value.length - 1)
    throw new CrdBackupError("USAGE", `${flag} takes KEY=VALUE, not "${value}"`);
  return [value.slice(0, i), value.slice(i + 1)];
}

export function parseNamespaceMap(values: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const v of values) {
    const [from, to] = pair("--namespace-map", v);
    if (!NAMESPACE_NAME.test(to)) {
      throw new CrdBackupError("USAGE", `--namespace-map ${v}: "${to}" is not a valid namespace name`);
    }
    map.set(from, to);
  }
  return map;
}

export function validateNamespacePrefix(prefix: string): string {
  if (!/^[a-z0-9][-a-z0-9]*$/.test(prefix) || prefix.length > 40) {
    throw new CrdBackupError(
      "USAGE",
      `--namespace-prefix "${prefix}": use lower-case letters, digits and "-", starting with a letter or digit, at most 40 characters`,
    );
  }
  return prefix;
}

/** Where objects of a source namespace go; an error message instead when that name is not valid. */
export function targetNamespace(
  options: NamespaceMapping,
  source: string,
): { name: string; invalid?: string } {
  const name = options.namespaceMap.get(source) ?? `${options.namespacePrefix ?? ""}${source}`;
  if (name.length > 63 || !NAMESPACE_NAME.test(name))
    return { name, invalid: `target namespace "${name}" is not a valid name (at most 63 characters)` };
  return { name };
}

export function parseExistingFor(values: string[]): Map<string, ExistingPolicy> {
  const map = new Map<string, ExistingPolicy>();
  for (const v of values) {
    const [resource, policy] = pair("--existing-for", v);
    if (!EXISTING_POLICIES.includes(policy as ExistingPolicy)) {
      throw new CrdBackupError(
        "USAGE",
        `--existing-for ${v}: policy must be one of ${EXISTING_POLICIES.join(", ")}`,
      );
    }
    map.set(resource, policy as ExistingPolicy);
  }
  return map;
}

export function policyFor(
  options: Pick<RestoreOptions, "existing" | "existingFor">,
  plural: string,
  group: string,
): ExistingPolicy {
  return options.existingFor.get(`${plural}.${group}`) ?? options.existingFor.get(plural) ?? options.existing;
}

/**
 * Objects written at once unless --concurrency says otherwise; adaptive flow control
 * (kube/flow-control.ts) holds fewer in flight when the API server pushes back, so this is a
 * ceiling. Chosen by measurement (bench/restore.ts, 50,000 objects into the 2-core test cluster):
 * 8 restored them in 88.4 and 82.2 s, 16 in 97.1 and 97.7 s (more requests in flight only queue
 * at a busy API server, and crd-backup's own CPU competes with it). At 10,000 objects 4, 8, 16 and
 * 32 were within the machine's noise of each other.
 */
export const RESTORE_CONCURRENCY = 8;
