/**
 * A rule set bound to one snapshot: the rules narrowed per resource once, the CRD schemas that
 * strategic patches need (from the snapshot's CRD entries, or the live CRD), and archived bodies
 * parsed only when some rule's groupResource, namespace and name conditions already hold. Memory
 * holds the rules and those schemas, never object bodies.
 */
import type { ObjectRef } from "../archive/format.ts";
import { parseJson, type JsonObject, type JsonValue } from "../json/json.ts";
import { applyModifiers, candidateRules, type ModifierResult } from "./apply.ts";
import { crdVersionSchema, type Schema } from "./schema.ts";
import type { ModifierRule, ModifierSet } from "./types.ts";

export class EntryModifiers {
  readonly set: ModifierSet;
  private readonly byResource = new Map<string, ModifierRule[]>();
  /** `plural.group` -> the CRD body's schemas by version, kept only for resources with strategic rules. */
  private readonly crds = new Map<string, Map<string, Schema>>();

  constructor(set: ModifierSet) {
    this.set = set;
  }

  /** The rules whose groupResource matches `plural.group`. */
  rulesFor(groupResource: string): ModifierRule[] {
    let rules = this.byResource.get(groupResource);
    if (!rules) {
      rules = this.set.rules.filter((r) => r.conditions.groupResource.test(groupResource));
      this.byResource.set(groupResource, rules);
    }
    return rules;
  }

  /** Keeps a CRD's schemas when a strategic rule may apply to its objects (the body is parsed only then). */
  noteCrd(name: string, body: JsonValue | Buffer): void {
    if (!this.rulesFor(name).some((r) => r.action.kind === "strategicPatches")) return;
    const crd = Buffer.isBuffer(body) ? parseJson(body.toString("utf8")) : body;
    const versions = new Map<string, Schema>();
    const spec = (crd as { spec?: { versions?: { name?: unknown }[] } }).spec;
    for (const v of spec?.versions ?? []) {
      if (typeof v.name === "string") versions.set(v.name, crdVersionSchema(crd, v.name));
    }
    this.crds.set(name, versions);
  }

  /**
   * The rules' result for an archived object; "unmatched" without parsing when no rule can apply.
   * `diff: false` when only the patched object is wanted (the restore's writing pass).
   */
  modify(ref: ObjectRef, body: Buffer | JsonObject, options: { diff?: boolean } = {}): ModifierResult {
    const groupResource = `${ref.plural}.${ref.group}`;
    const id = { groupResource, namespace: ref.namespace, name: ref.name };
    const rules = candidateRules(this.rulesFor(groupResource), id);
    if (rules.length === 0) return { kind: "unmatched" };
    const stored = Buffer.isBuffer(body) ? (parseJson(body.toString("utf8")) as JsonObject) : body;
    return applyModifiers(rules, id, stored, this.crds.get(groupResource)?.get(ref.version), options);
  }
}
