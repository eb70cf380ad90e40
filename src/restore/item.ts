import type { IndexRecord, ObjectRef } from "../archive/format.ts";
import { isJsonObject, type JsonObject } from "../json/json.ts";
import type { ModifierResult } from "../modifiers/apply.ts";
import type { EntryModifiers } from "../modifiers/entries.ts";
import type { Decision } from "./decisions.ts";
import { targetNamespace, type NamespaceMapping } from "./options.ts";
import type { ResourcePlan } from "./types.ts";

/** An object entry of the verified archive: of its index record, identity reads only the uids. */
export interface ObjectEntry {
  ref: ObjectRef;
  record: Pick<IndexRecord, "uid" | "ownerUids">;
  body: Buffer;
}

/** Who an object is in the target: derived from its entry, the same way when planning and when writing. */
export interface ItemIdentity {
  resource: ResourcePlan;
  sourceNamespace?: string;
  namespace?: string;
  /** Why the target namespace cannot be used, when it cannot. */
  invalidNamespace?: string;
  name: string;
  uid?: string;
  ownerUids: readonly string[];
  /** What the resource modifiers made of it (they are pure: the same each time). */
  modified: ModifierResult;
}

/** One object as the writer sees it: who it is and what the plan decided. */
export type ItemPlan = ItemIdentity & Omit<Decision, "namespaced">;

const UNMATCHED: ModifierResult = { kind: "unmatched" };
const NO_OWNERS: readonly string[] = [];
const PLANNING = { diff: true };
const WRITING = { diff: false };

/**
 * Who each object entry is in the target. Built once with the plan from what identity needs (the
 * planned resources, the namespace mapping, the modifiers bound to the snapshot), and asked again
 * when writing: a plan keeps one byte per object (restore/decisions.ts), not identities.
 */
export class Identities {
  readonly #resources: ReadonlyMap<string, ResourcePlan>;
  readonly #mapping: NamespaceMapping;
  readonly #modifiers: EntryModifiers | undefined;
  /** Source namespace -> where its objects go: worked out once per namespace. */
  readonly #targets = new Map<string, { name: string; invalid?: string }>();

  constructor(
    resources: ReadonlyMap<string, ResourcePlan>,
    mapping: NamespaceMapping,
    modifiers: EntryModifiers | undefined,
  ) {
    this.#resources = resources;
    this.#mapping = mapping;
    this.#modifiers = modifiers;
  }

  /** While planning: with the paths modifiers changed, for the report. Undefined for a resource not restored. */
  planned(entry: ObjectEntry): ItemIdentity | undefined {
    return this.#identify(entry, PLANNING);
  }

  /** While writing: only the patched object is needed, not what changed. */
  written(entry: ObjectEntry): ItemIdentity | undefined {
    return this.#identify(entry, WRITING);
  }

  #identify(entry: ObjectEntry, modify: typeof PLANNING): ItemIdentity | undefined {
    const resource = this.#resources.get(`${entry.ref.plural}.${entry.ref.group}`);
    if (!resource) return undefined;
    const target = entry.ref.namespace === undefined ? undefined : this.#target(entry.ref.namespace);
    // conditions see the object as stored; everything after sees the patched object
    const modified = this.#modifiers?.modify(entry.ref, entry.body, modify) ?? UNMATCHED;
    const patched = modified.kind === "patched" ? modified.object : undefined;
    const patchedName =
      patched && isJsonObject(patched["metadata"]) ? patched["metadata"]["name"] : undefined;
    return {
      resource,
      sourceNamespace: entry.ref.namespace,
      namespace: target?.name,
      ...(target?.invalid ? { invalidNamespace: target.invalid } : {}),
      name: typeof patchedName === "string" ? patchedName : entry.ref.name,
      uid: entry.record.uid,
      ownerUids: entry.record.ownerUids ?? NO_OWNERS,
      modified,
    };
  }

  #target(source: string): { name: string; invalid?: string } {
    let target = this.#targets.get(source);
    if (!target) this.#targets.set(source, (target = targetNamespace(this.#mapping, source)));
    return target;
  }
}

/** The body modifiers made, when they made one. */
export function patchedObject(identity: ItemIdentity): JsonObject | undefined {
  return identity.modified.kind === "patched" ? identity.modified.object : undefined;
}
