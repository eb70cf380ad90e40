/**
 * What the standby does next, decided from the journal listing and its resume point alone (pure):
 * nothing, wait for a journal, apply the segments after the resume point, or re-sync from the
 * newest state. Modelled on client-go's reflector: follow from where it left off while the chain
 * it follows continues unbroken, re-list (here: a whole sync) when it cannot.
 */
import type { Chain } from "../journal/chains.ts";
import { segmentKey, type SegmentKey } from "../journal/segment-key.ts";

/** The last segment fully applied to the target, as the target's ConfigMap keeps it. */
export interface ResumePoint {
  cluster: string;
  base: string;
  /** The segment's storage key. */
  segment: string;
  /** The end of the state applied (the point in time the target equals). */
  at: string;
}

interface Target {
  chain: Chain;
  /** The newest point in time the chain can be replayed to. */
  at: Date;
  /** The segments a replay to `at` reads (fetchPointInTime reads exactly these). */
  segments: SegmentKey[];
  last: SegmentKey;
}

export type Step =
  | { kind: "wait"; reason: string }
  | { kind: "current" }
  | (Target & { kind: "resync"; reason: string })
  /** Apply the changes of segments[first..] (the ones after the resume point). */
  | (Target & { kind: "follow"; first: number });

/** The chain with the newest recoverable point, as `--at now` chooses it (journal/replay/plan.ts). */
function newestTarget(chains: readonly Chain[]): Target | undefined {
  let chain: Chain | undefined;
  let at: Date | undefined;
  for (const c of chains) {
    const end = c.windows.at(-1)?.to;
    if (end && (!at || end >= at)) [chain, at] = [c, end];
  }
  if (!chain || !at) return undefined;
  const end = at;
  let segments = chain.segments.filter((s) => s.from < end);
  if (chain.broken) {
    // replay stops before a break: follow up to it, and a new chain (the recorder's next base) after it
    const i = segments.findIndex((s) => segmentKey(s) === chain.broken!.key);
    if (i === 0) return undefined;
    if (i > 0) {
      segments = segments.slice(0, i);
      if (at > segments.at(-1)!.to) at = segments.at(-1)!.to;
    }
  }
  const last = segments.at(-1);
  return last ? { chain, at, segments, last } : undefined;
}

export function nextStep(chains: readonly Chain[], resume: ResumePoint | undefined): Step {
  const target = newestTarget(chains);
  if (!target)
    return { kind: "wait", reason: "no recoverable window yet: the journal has no base with segments" };
  const lastKey = segmentKey(target.last);
  if (resume?.segment === lastKey) return { kind: "current" };
  if (!resume) return { ...target, kind: "resync", reason: "no resume point in the target" };
  if (resume.cluster !== target.chain.cluster || resume.base !== target.chain.base)
    return { ...target, kind: "resync", reason: "a new chain: the recorder started a new base" };
  const i = target.segments.findIndex((s) => segmentKey(s) === resume.segment);
  if (i < 0) return { ...target, kind: "resync", reason: "the resume segment is no longer in the chain" };
  // a gap loses intermediate states: the objects it touched are unknown, so all of them are synced;
  // so is a gap segment the last step could replay only to its gap's start
  const resumed = target.segments[i]!;
  const partial = resumed.gap && Date.parse(resume.at) < resumed.to.getTime();
  if (partial || target.segments.slice(i + 1).some((s) => s.gap))
    return { ...target, kind: "resync", reason: "a gap in the journal" };
  return { ...target, kind: "follow", first: i + 1 };
}
