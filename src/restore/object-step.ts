/**
 * What writing does with one planned object, and what each answer means for its report: pure
 * functions of the plan's decision and of the answers, so the writer only carries them out
 * (restore/apply.ts) and outcomes travel as values, never as flags set on the item.
 */
import { KubeApiError } from "../errors.ts";
import { serverMessage } from "./apply-context.ts";
import type { ItemPlan } from "./item.ts";
import type { RestorePlan } from "./plan.ts";
import type { Outcome } from "./report.ts";

/** The two writes an object can get: a create (POST) or a server-side apply (PATCH). */
export type WriteAction = "create" | "update";

export type ObjectStep =
  /** Reported as the plan decided, nothing written; `liveDiff`: with the fields that differ from the live object. */
  | {
      kind: "report";
      outcome: "conflict" | "failed" | "skipped";
      reason: string | undefined;
      liveDiff: boolean;
    }
  | { kind: "report"; outcome: "unchanged" }
  | { kind: "write"; action: WriteAction };

const CREATE: ObjectStep = { kind: "write", action: "create" };
const UPDATE: ObjectStep = { kind: "write", action: "update" };
const UNCHANGED: ObjectStep = { kind: "report", outcome: "unchanged" };

export function objectStep(item: Pick<ItemPlan, "action" | "reason" | "modifiers">): ObjectStep {
  const { action, reason } = item;
  if (action === "conflict" || action === "failed")
    return { kind: "report", outcome: action, reason, liveDiff: false };
  // a dropped object is the modifiers' doing: no live object to compare it with
  if (item.modifiers?.droppedBy !== undefined)
    return { kind: "report", outcome: "skipped", reason, liveDiff: false };
  if (action === "unchanged") return UNCHANGED;
  if (action === "skip") return { kind: "report", outcome: "skipped", reason, liveDiff: true };
  return action === "create" ? CREATE : UPDATE;
}

/**
 * Why the server cannot validate a dry run's write, when it cannot: the object's kind or
 * namespace is one the dry run did not really create.
 */
export function unvalidated(item: ItemPlan, plan: Pick<RestorePlan, "namespaces">): string | undefined {
  if (!item.resource.crdLive) return "its CRD is not installed yet";
  if (item.namespace && plan.namespaces.some((n) => n.name === item.namespace && !n.exists))
    return "its namespace does not exist yet";
  return undefined;
}

/** The outcome of a write that succeeded. */
export function writtenOutcome(action: WriteAction, dryRun: boolean): Outcome {
  if (dryRun) return action === "create" ? "would-create" : "would-update";
  return action === "create" ? "created" : "updated";
}

/**
 * The outcome of a write the server refused (`action`: the write that was refused, or, for a
 * refused status write, the write before it): a create that finds the object there is skipped.
 */
export function refusedOutcome(action: WriteAction, error: unknown): { outcome: Outcome; reason: string } {
  const exists = error instanceof KubeApiError && error.status === 409;
  return {
    outcome: action === "create" && exists ? "skipped" : "failed",
    reason: exists ? "already exists (appeared after the plan was made)" : serverMessage(error),
  };
}
