import type { IndexRecord, ObjectRef } from "../archive/format.ts";
import { isJsonObject, type JsonObject } from "../json/json.ts";
import type { ModifierResult } from "../modifiers/apply.ts";
import type { EntryModifiers } from "../modifiers/entries.ts";
import type { Decision } from "./decisions.ts";
import { targetNamespace, type RestoreOptions } from "./options.ts";
import type { ResourcePlan } from "./plan.ts";

/** An object entry of the verified archive. */
export interface ObjectEntry {
  ref: ObjectRef;
  record: IndexRecord;
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
  ownerUids: string[];
  /** What the resource modifiers made of it (they are pure: the same each time). */
  modified: ModifierResult;
}

/** One object as the writer sees it: who it is and what the plan decided. */
export type ItemPlan = ItemIdentity & Omit<Decision, "namespaced">;

/** The identity of an object entry, or undefined when its resource is not being restored. */
export function identify(
  entry: ObjectEntry,
  resources: ReadonlyMap<string, ResourcePlan>,
  options: RestoreOptions,
  modifiers: EntryModifiers | undefined,
  diff: boolean,
): ItemIdentity | undefined {
  const resource = resources.get(`${entry.ref.plural}.${entry.ref.group}`);
  if (!resource) return undefined;
  const target =
    entry.ref.namespace === undefined ? undefined : targetNamespace(options, entry.ref.namespace);
  // conditions see the object as stored; everything after sees the patched object
  const modified = modifiers?.modify(entry.ref, entry.body, { diff }) ?? { kind: "unmatched" as const };
  const patched = modified.kind === "patched" ? modified.object : undefined;
  const patchedName = patched && isJsonObject(patched["metadata"]) ? patched["metadata"]["name"] : undefined;
  return {
    resource,
    sourceNamespace: entry.ref.namespace,
    namespace: target?.name,
    ...(target?.invalid ? { invalidNamespace: target.invalid } : {}),
    name: typeof patchedName === "string" ? patchedName : entry.ref.name,
    uid: entry.record.uid,
    ownerUids: entry.record.ownerUids ?? [],
    modified,
  };
}

/** The body modifiers made, when they made one. */
export function patchedObject(identity: ItemIdentity): JsonObject | undefined {
  return identity.modified.kind === "patched" ? identity.modified.object : undefined;
}
