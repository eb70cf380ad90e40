/**
 * What the plan decided for each object, by the object's position among the archive's object
 * entries. A restore of 300k objects must not hold a record per object: the action and two bits
 * take one byte; the rare extras (a reason, the live uid, what modifiers did) and owner depths are
 * kept only for the objects that have them. Everything else about an object (its resource, target
 * namespace, name, owners) is derived from its entry again when it is written (restore/item.ts).
 */
import type { FieldChange } from "../json/diff.ts";

export type ItemAction = "create" | "update" | "unchanged" | "skip" | "conflict" | "failed";

/** What resource modifiers did to an object: the rules that matched, the changed paths (never values). */
export interface ItemModifiers {
  rules: number[];
  diff: FieldChange[];
  /** Velero v1 rules whose JSON Patch `test` did not hold: not applied, as Velero does. */
  skipped?: number[];
  /** The rule that failed on the object, or dropped it. */
  failedRule?: number;
  droppedBy?: number;
}

export interface Decision {
  action: ItemAction;
  /** The object (as patched) has a status to restore. */
  hasStatus: boolean;
  namespaced: boolean;
  reason?: string;
  /** The uid of the object already in the cluster under the same name. */
  liveUid?: string;
  modifiers?: ItemModifiers;
}

type Extras = Pick<Decision, "reason" | "liveUid" | "modifiers">;

const ACTIONS: readonly ItemAction[] = ["create", "update", "unchanged", "skip", "conflict", "failed"];
const ACTION_MASK = 0x0f;
const STATUS_BIT = 0x10;
const NAMESPACED_BIT = 0x20;

export class Decisions {
  /** 0: the object is not part of the restore; else the action's index + 1, and the bits. */
  private codes = new Uint8Array(4096);
  private readonly extras = new Map<number, Extras>();
  /** Owner depth, for objects whose owners are restored before them (0 for the rest). */
  private readonly depths = new Map<number, number>();
  private maxDepth = 0;
  /** Objects in the restore. */
  count = 0;

  set(ordinal: number, d: Decision): void {
    if (ordinal >= this.codes.length) {
      const grown = new Uint8Array(Math.max(ordinal + 1, this.codes.length * 2));
      grown.set(this.codes);
      this.codes = grown;
    }
    if (this.codes[ordinal] === 0) this.count++;
    this.codes[ordinal] =
      (ACTIONS.indexOf(d.action) + 1) | (d.hasStatus ? STATUS_BIT : 0) | (d.namespaced ? NAMESPACED_BIT : 0);
    if (d.reason !== undefined || d.liveUid !== undefined || d.modifiers !== undefined)
      this.extras.set(ordinal, { reason: d.reason, liveUid: d.liveUid, modifiers: d.modifiers });
  }

  get(ordinal: number): Decision | undefined {
    const code = this.codes[ordinal] ?? 0;
    if (code === 0) return undefined;
    const extras = this.extras.get(ordinal);
    return {
      action: ACTIONS[(code & ACTION_MASK) - 1]!,
      hasStatus: (code & STATUS_BIT) !== 0,
      namespaced: (code & NAMESPACED_BIT) !== 0,
      ...(extras?.reason !== undefined ? { reason: extras.reason } : {}),
      ...(extras?.liveUid !== undefined ? { liveUid: extras.liveUid } : {}),
      ...(extras?.modifiers !== undefined ? { modifiers: extras.modifiers } : {}),
    };
  }

  setDepths(depths: ReadonlyMap<number, number>): void {
    for (const [ordinal, depth] of depths) {
      if (depth > 0) this.depths.set(ordinal, depth);
      this.maxDepth = Math.max(this.maxDepth, depth);
    }
  }

  /** The restore/order.ts phase of an object: cluster-scoped objects first, each scope by owner depth. */
  phase(ordinal: number): number {
    const namespaced = ((this.codes[ordinal] ?? 0) & NAMESPACED_BIT) !== 0;
    return (namespaced ? this.maxDepth + 1 : 0) + (this.depths.get(ordinal) ?? 0);
  }

  /** The phases that hold objects, in order. */
  phases(): number[] {
    const found = new Set<number>();
    for (let i = 0; i < this.codes.length; i++) if (this.codes[i] !== 0) found.add(this.phase(i));
    return [...found].sort((a, b) => a - b);
  }
}
