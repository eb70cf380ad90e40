/**
 * One standby step through the one restore path: the state at the step's point in time
 * (fetchPointInTime: the base plus the chain's segments), synced into the target as syncVerified does,
 * as `restore --sync --restore-status` does. Following, the sync is restricted to the resources
 * the new segments touched: the whole state is correct for them, and the live read stays the size
 * of what changed. A new segment with CRD, namespace, resync or gap records makes it a whole sync.
 *
 * The state itself is advanced from the one the last step applied (kept on local disk) by the new
 * segments alone, so a step reads what is new, not the chain from its base; a re-sync, or new
 * segments holding a re-list or a gap, build it from the base as `restore --at` does.
 */
import { chainRecords } from "../history/read.ts";
import type { KubeClient } from "../kube/client.ts";
import { resourceSelected, type Filters } from "../objects/filters.ts";
import type { Logger } from "../report/log.ts";
import type { RestoreOptions } from "../restore/options.ts";
import { restoreVerified } from "../restore/restore.ts";
import { gatherStoredTexts, type Gathered } from "../restore/stored-texts.ts";
import type { PointInTimePlan } from "../journal/replay/plan.ts";
import { advancePointInTime, fetchPointInTime } from "../source/point-in-time.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { segmentKey } from "../journal/segment-key.ts";
import type { Step } from "./step.ts";

export interface StepContext {
  client: KubeClient;
  storage: StorageBackend;
  /** The restore options (filters, concurrency, ...) every step starts from. */
  options: RestoreOptions;
  crds: boolean;
  log: Logger;
  signal?: AbortSignal;
}

/** An object the target refused, named (never its contents). */
export interface Refusal {
  resource: string;
  namespace?: string;
  name: string;
  outcome: string;
  reason?: string;
}

export interface StepResult {
  /** Objects created, updated or deleted. */
  applied: number;
  refused: Refusal[];
  failed: number;
  /** Record times (ms) of the changes followed; empty for a re-sync. */
  changeTimes: number[];
  /** The sync was restricted to these resources (undefined: a whole sync). */
  resources?: string[];
  /** The state was the held one advanced (false: built from the chain's base). */
  advanced: boolean;
  /** Seconds per phase: the new segments read, the state advanced, the sync planned, written. */
  phases: Phases;
}

export interface Phases {
  read: number;
  state: number;
  plan: number;
  write: number;
}

/** The state the last step applied, at the end of `segment`: what the next one advances. */
export interface HeldState {
  snapshot: VerifiedSnapshot;
  segment: string;
}

interface Touched {
  /** Records other than object puts and deletes: only a whole sync is sure to apply them. */
  whole: boolean;
  /** Resync or gap records: the held state is not advanced across them. */
  relist: boolean;
  resources: Set<string>;
  /** Record times (ms) of the puts and deletes. */
  times: number[];
}

/** What the step's new segments touch: the resources of their object records, or "everything". */
async function touched(ctx: StepContext, step: Extract<Step, { kind: "follow" }>): Promise<Touched> {
  const resources = new Set<string>();
  const times: number[] = [];
  const records = chainRecords(ctx.storage, step.chain, step.at, ctx.signal, {
    first: step.first,
    end: step.segments.length,
  });
  let whole = false;
  let relist = false;
  for await (const { record } of records) {
    if (record.op !== "put" && record.op !== "delete") whole = relist = true;
    else {
      times.push(Date.parse(record.t));
      if (record.kind === "object") resources.add(`${record.plural}.${record.group}`);
      else whole = true;
    }
  }
  return { whole, relist, resources, times };
}

/** The filters narrowed to `resources` (of those they select). */
function restricted(filters: Filters, resources: Set<string>): string[] {
  return [...resources].filter((r) => {
    const dot = r.indexOf(".");
    return resourceSelected(filters, r.slice(dot + 1), r.slice(0, dot));
  });
}

/** The plan that advances the held state to the step's point in time, when it can be advanced. */
function advancing(
  step: Extract<Step, { kind: "follow" | "resync" }>,
  held: HeldState | undefined,
  relist: boolean,
): PointInTimePlan | undefined {
  if (step.kind !== "follow" || !held || relist) return undefined;
  // the held state ends exactly at the segment before the new ones (a follow step's `at` is its end)
  const before = step.segments[step.first - 1];
  if (!before || held.segment !== segmentKey(before)) return undefined;
  return {
    at: step.at,
    cluster: step.chain.cluster,
    base: step.chain.base,
    segments: step.segments.slice(step.first),
    prevOfFirst: before.sha256,
  };
}

/**
 * Applies a step. Returns the state it applied with the result: the caller keeps it for the next
 * step once the step is complete, and disposes of it otherwise.
 */
export async function applyStep(
  ctx: StepContext,
  step: Extract<Step, { kind: "follow" | "resync" }>,
  held: HeldState | undefined,
): Promise<{ result: StepResult; state: VerifiedSnapshot }> {
  const marks = [performance.now()];
  const mark = () => marks.push(performance.now());
  const phases = (): Phases => {
    const d = (i: number) => Math.round((marks[i + 1] ?? marks[i]!) - marks[i]!) / 1000;
    return { read: d(0), state: d(1), plan: d(2), write: d(3) };
  };
  let filters = ctx.options.filters;
  let changeTimes: number[] = [];
  let resources: string[] | undefined;
  let relist = false;
  if (step.kind === "follow") {
    const t = await touched(ctx, step);
    changeTimes = t.times;
    relist = t.relist;
    if (!t.whole) {
      resources = restricted(filters, t.resources);
      filters = { ...filters, includeResources: resources };
    }
  }
  mark();
  const plan = advancing(step, held, relist);
  // the sync's stored texts come from the new state's verification pass, not a pass of their own
  // (as restoreSnapshot gathers them): one read of the state fewer per step
  const gathered: Gathered = { texts: undefined };
  const visit =
    resources?.length === 0
      ? undefined
      : gatherStoredTexts(ctx.client, { ...ctx.options, filters }, gathered);
  const state = plan
    ? await advancePointInTime(ctx.storage, held!.snapshot, plan, ctx.signal, visit)
    : await fetchPointInTime(ctx.storage, { at: step.at, cluster: step.chain.cluster }, ctx.signal, visit);
  mark();
  try {
    // only changes the filters leave out (or none, an empty segment): nothing to write
    if (resources?.length === 0)
      return {
        result: {
          applied: 0,
          refused: [],
          failed: 0,
          changeTimes,
          resources,
          advanced: Boolean(plan),
          phases: phases(),
        },
        state,
      };
    // a sync (restore/restore.ts syncVerified), given the texts gathered above
    await using report = await restoreVerified(
      ctx.client,
      state,
      { ...ctx.options, filters, sync: { crds: ctx.crds }, onPlan: mark },
      ctx.log,
      gathered,
    );
    mark();
    const c = report.counts;
    const result: StepResult = {
      applied: c.created + c.updated + c.deleted + c.terminating,
      refused: report.problems.map((p) => ({
        resource: p.resource,
        ...(p.namespace ? { namespace: p.namespace } : {}),
        name: p.name,
        outcome: p.outcome,
        ...(p.reason ? { reason: p.reason } : {}),
      })),
      failed: c.failed + c.conflict,
      changeTimes,
      ...(resources ? { resources } : {}),
      advanced: Boolean(plan),
      phases: phases(),
    };
    return { result, state };
  } catch (e) {
    await state[Symbol.asyncDispose]();
    throw e;
  }
}
