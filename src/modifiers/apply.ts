/**
 * Applying a rule set to one stored object: a pure function of (rules, stored object, the CRD's
 * schema) to the object to write, or "dropped", or the failure of one rule. Conditions read the
 * object as stored; the patches of every matching rule apply in file order, each to the result
 * of the one before. A rule that fails fails the object, never the run.
 */
import { diffJson, type FieldChange } from "../json/diff.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../json/json.ts";
import { bodyMatches, identityMatches, type StoredIdentity } from "./conditions.ts";
import { applyJsonPatch } from "./json-patch.ts";
import { PatchError } from "./json-value.ts";
import { applyMergePatch } from "./merge-patch.ts";
import { applyReplaceRegex } from "./replace-regex.ts";
import type { Schema } from "./schema.ts";
import { applyStrategicPatch } from "./strategic.ts";
import type { ModifierRule, RuleAction } from "./types.ts";

export type ModifierResult =
  | { kind: "unmatched" }
  /**
   * `rules`: the rules applied; `skipped`: v1 rules whose JSON Patch `test` did not hold; `diff`:
   * changed paths against the stored object (never values), empty when the rules changed nothing.
   */
  | { kind: "patched"; object: JsonObject; rules: number[]; skipped?: number[]; diff: FieldChange[] }
  | { kind: "dropped"; rules: number[]; rule: number }
  | { kind: "failed"; rules: number[]; rule: number; reason: string };

/** The rules whose body-free conditions hold: when none do, the body need not be read at all. */
export function candidateRules(rules: readonly ModifierRule[], id: StoredIdentity): ModifierRule[] {
  return rules.filter((r) => identityMatches(r.conditions, id));
}

function patch(obj: JsonObject, action: RuleAction, schema: Schema): JsonObject {
  switch (action.kind) {
    case "patches": {
      const out = applyJsonPatch(obj, action.ops);
      if (!isJsonObject(out))
        throw new PatchError("the patch turns the object into something else than an object");
      return out;
    }
    case "mergePatches":
      return action.patches.reduce<JsonObject>((o, p) => {
        const out = applyMergePatch(o, p);
        if (!isJsonObject(out)) throw new PatchError("the merge patch replaces the whole object");
        return out;
      }, obj);
    case "strategicPatches":
      return action.patches.reduce<JsonObject>((o, p) => applyStrategicPatch(o, p, schema), obj);
    case "replaceRegex":
      return action.replacements.reduce<JsonObject>((o, r) => applyReplaceRegex(o, r), obj);
    case "drop":
      return obj;
  }
}

const field = (obj: JsonObject, ...path: string[]): JsonValue | undefined => {
  let cur: JsonValue | undefined = obj;
  for (const k of path) cur = isJsonObject(cur) ? cur[k] : undefined;
  return cur;
};

/** What a patch may not change: the object's type and namespace (use --namespace-map for that). */
function checkIdentity(stored: JsonObject, patched: JsonObject): void {
  for (const path of [["apiVersion"], ["kind"], ["metadata", "namespace"]]) {
    if (JSON.stringify(field(stored, ...path)) !== JSON.stringify(field(patched, ...path)))
      throw new PatchError(
        `changes ${path.join(".")}${path[1] === "namespace" ? " (map namespaces with --namespace-map)" : ""}`,
      );
  }
  const name = field(patched, "metadata", "name");
  if (typeof name !== "string" || name === "")
    throw new PatchError("leaves the object without metadata.name");
}

/**
 * Applies `rules` (already narrowed by candidateRules, or all of them) to `stored`. `schema` is
 * the CRD's openAPIV3Schema of the stored version, for strategic merge patches.
 */
export function applyModifiers(
  rules: readonly ModifierRule[],
  id: StoredIdentity,
  stored: JsonObject,
  schema: Schema,
  options: { diff?: boolean } = {},
): ModifierResult {
  const hit: number[] = [];
  const skipped: number[] = [];
  let object = stored;
  for (const rule of rules) {
    if (!identityMatches(rule.conditions, id) || !bodyMatches(rule.conditions, stored)) continue;
    if (rule.action.kind === "drop")
      return { kind: "dropped", rules: [...hit, rule.index], rule: rule.index };
    try {
      const next = patch(object, rule.action, schema);
      checkIdentity(stored, next);
      object = next;
      hit.push(rule.index);
    } catch (e) {
      if (!(e instanceof PatchError)) throw e;
      if (e.testFailed && !rule.strictTest) {
        skipped.push(rule.index);
        continue;
      }
      hit.push(rule.index);
      return {
        kind: "failed",
        rules: hit,
        rule: rule.index,
        reason: `rule ${rule.index} (${rule.source}): ${e.message}`,
      };
    }
  }
  if (hit.length === 0 && skipped.length === 0) return { kind: "unmatched" };
  return {
    kind: "patched",
    object,
    rules: hit,
    ...(skipped.length ? { skipped } : {}),
    diff: options.diff === false ? [] : diffJson(stored, object),
  };
}
