/**
 * Retention of journal chains (crd-backup record): a chain is what point-in-time restores read,
 * so it is kept whole, with its base, while it is the newest chain of its cluster (the one being
 * recorded) or reaches into the time the policy keeps. How far back `--at` works is therefore
 * said by the same --keep-* rules: the oldest snapshot they keep, or `within` of the newest
 * recorded instant, whichever reaches further. Pure: decided from times, tested on tables.
 */
import { durationBefore } from "../units/duration.ts";
import type { Decision, RetentionPolicy } from "./policy.ts";

export interface ChainCandidate {
  cluster: string;
  /** The base snapshot's id. */
  base: string;
  /** When the base finished: the chain's first recoverable instant. */
  from: Date;
  /** The end of its last segment (segments dated in the future left out). */
  to: Date;
  segments: number;
}

export interface ChainDecision extends ChainCandidate {
  keep: boolean;
  /** Why it stays ("newest chain", "within reach ..."); empty when it goes with its base. */
  reasons: string[];
}

/**
 * The earliest instant the policy keeps, for one cluster: the oldest snapshot its rules keep, or
 * `within` before the newest recorded instant. Undefined when nothing is kept.
 */
export function policyReach(
  decisions: Decision[],
  policy: RetentionPolicy,
  newestRecorded: Date | undefined,
): Date | undefined {
  const times = decisions.filter((d) => d.keep).map((d) => d.time.getTime());
  if (policy.within && newestRecorded) times.push(durationBefore(policy.within, newestRecorded).getTime());
  return times.length === 0 ? undefined : new Date(Math.min(...times));
}

/**
 * Decides the chains of one cluster, and marks every base of a kept chain as kept ("journal").
 * `decisions` are the policy's, before locks; they are changed in place for those bases.
 */
export function decideChains(
  decisions: Decision[],
  chains: ChainCandidate[],
  policy: RetentionPolicy,
): ChainDecision[] {
  const newestRecorded = [...chains.map((c) => c.to), ...decisions.map((d) => d.time)].reduce<
    Date | undefined
  >((a, b) => (a && a >= b ? a : b), undefined);
  const reach = policyReach(decisions, policy, newestRecorded);
  const newest = chains.reduce<string | undefined>((a, c) => (a && a > c.base ? a : c.base), undefined);
  const byId = new Map(decisions.map((d) => [d.id, d]));
  return chains.map((c) => {
    const reasons: string[] = [];
    if (c.base === newest) reasons.push("newest chain");
    if (reach && c.to >= reach)
      reasons.push(`within reach (the policy keeps back to ${reach.toISOString()})`);
    // a base the rules keep lies within reach, and so does its chain (it ends after the base)
    const base = byId.get(c.base);
    if (reasons.length > 0 && base) {
      base.keep = true;
      if (!base.reasons.includes("journal")) base.reasons.push("journal");
    }
    return { ...c, keep: reasons.length > 0, reasons };
  });
}
