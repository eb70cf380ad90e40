/**
 * `crd-backup standby`: keep a target cluster equal to the newest state of one cluster's journal.
 * Take the lease, read the resume point, then loop: list the journal, decide the step
 * (step.ts), apply it (apply.ts), store the new resume point, and poll again. It reads storage
 * only and writes only to the target.
 *
 * A step the target refuses part of is retried with backoff from the same resume point: the
 * other objects are written meanwhile (a sync does not stop at one refusal), and the resume point
 * moves only once every object of the step is in place, so a restart never skips a change.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { CrdBackupError, isCrdBackupError } from "../errors.ts";
import { listChains, type Chain } from "../journal/chains.ts";
import { segmentKey } from "../journal/segment-key.ts";
import { applyStep, type HeldState, type StepContext, type StepResult } from "./apply.ts";
import { StandbyLease } from "./lease.ts";
import type { StandbyStats } from "./metrics.ts";
import { ensureNamespace, readResume, writeResume } from "./resume.ts";
import { nextStep, type ResumePoint, type Step } from "./step.ts";
import type { StorageBackend } from "../storage/backend.ts";

export interface StandbyOptions extends Omit<StepContext, "signal"> {
  /** A prefix of the followed cluster's uid; needed when the location holds several. */
  cluster?: string;
  stateNamespace: string;
  pollMs: number;
  leaseSeconds: number;
  stats: StandbyStats;
  signal: AbortSignal;
}

/** The longest wait between retries of a failing step. */
const MAX_BACKOFF_MS = 60_000;
/** Codes no retry mends: the standby stops with them. */
const FATAL = new Set(["USAGE", "CONFIG", "DECRYPT"]);

/** The chains of the one cluster followed (a usage error when the location holds several and --cluster does not choose). */
async function clusterChains(storage: StorageBackend, prefix: string | undefined): Promise<Chain[]> {
  const all = await listChains(storage);
  const uids = [...new Set(all.map((c) => c.cluster))].filter(
    (u) => prefix === undefined || u.startsWith(prefix),
  );
  if (uids.length > 1)
    throw new CrdBackupError(
      "USAGE",
      `${storage.location} holds the journals of ${uids.length} clusters (${uids.join(", ")}): say --cluster <uid prefix>`,
    );
  return all.filter((c) => c.cluster === uids[0]);
}

const pause = (ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => {});

export async function runStandby(options: StandbyOptions): Promise<void> {
  const { client, storage, stats, log, signal } = options;
  await ensureNamespace(client, options.stateNamespace, signal);
  const lease = new StandbyLease(client, options.stateNamespace, options.leaseSeconds);
  await lease.acquire(signal);
  log.info("standby lease taken", { namespace: options.stateNamespace, holder: lease.holder });
  // a lease lost (another standby took it over) stops this one: two must never write at once
  const stop = new AbortController();
  let lost: unknown;
  const renewing = setInterval(
    () => {
      lease.renew().catch((e: unknown) => {
        if (isCrdBackupError(e) && e.code === "CONFLICT") {
          lost = e;
          stop.abort(e);
        } else log.warn("standby lease renewal failed", { error: describe(e) });
      });
    },
    (options.leaseSeconds * 1000) / 3,
  );
  const running = AbortSignal.any([signal, stop.signal]);
  const ctx: StepContext = { ...options, signal: running };
  try {
    let resume = await readResume(client, options.stateNamespace, running);
    log.info("standby started", { resumeAfter: resume?.segment ?? "none" });
    let failures = 0;
    let held: HeldState | undefined;
    try {
      while (!running.aborted) {
        let step: Step | undefined;
        try {
          step = nextStep(await clusterChains(storage, options.cluster), resume);
          if (step.kind === "wait" || step.kind === "current") {
            if (step.kind === "wait") log.debug("standby waiting", { reason: step.reason });
            await pause(options.pollMs, running);
            continue;
          }
          if (step.kind === "resync") {
            stats.resyncs++;
            log.info("standby re-sync", {
              reason: step.reason,
              base: step.chain.base,
              at: step.at.toISOString(),
            });
          }
          const began = performance.now();
          const { result, state } = await applyStep(ctx, step, held);
          const appliedAt = Date.now();
          stats.applied += result.applied;
          if (result.failed > 0) {
            await state[Symbol.asyncDispose]();
            stats.errors += result.failed;
            refused(options, result);
            const wait = Math.min(1000 * 2 ** failures++, MAX_BACKOFF_MS);
            log.warn("standby step incomplete: the target refused objects; retrying", {
              refused: result.failed,
              retryInSeconds: wait / 1000,
            });
            await pause(wait, running);
            continue;
          }
          failures = 0;
          const point: ResumePoint = {
            cluster: step.chain.cluster,
            base: step.chain.base,
            segment: segmentKey(step.last),
            at: step.at.toISOString(),
          };
          try {
            await writeResume(client, options.stateNamespace, point, running);
          } catch (e) {
            await state[Symbol.asyncDispose]();
            throw e;
          }
          resume = point;
          await held?.snapshot[Symbol.asyncDispose]();
          held = { snapshot: state, segment: point.segment };
          observe(stats, step, result, appliedAt);
          log.info("standby applied", {
            step: step.kind,
            segment: point.segment,
            at: point.at,
            changes: result.changeTimes.length,
            applied: result.applied,
            resources: result.resources?.length,
            state: result.advanced ? "advanced" : "from the base",
            lagSeconds: stats.lag,
            stepSeconds: Math.round(performance.now() - began) / 1000,
            // where the step's time went: new segments read, state advanced, sync planned, written
            readSeconds: result.phases.read,
            stateSeconds: result.phases.state,
            planSeconds: result.phases.plan,
            writeSeconds: result.phases.write,
          });
        } catch (e) {
          if (running.aborted) break;
          if (isCrdBackupError(e) && FATAL.has(e.code)) throw e;
          stats.errors++;
          const wait = Math.min(1000 * 2 ** failures++, MAX_BACKOFF_MS);
          log.error("standby step failed; retrying", { error: describe(e), retryInSeconds: wait / 1000 });
          await pause(wait, running);
        }
      }
    } finally {
      await held?.snapshot[Symbol.asyncDispose]();
    }
  } finally {
    clearInterval(renewing);
    if (!lost) await lease.release();
  }
  if (lost) throw lost;
}

function observe(
  stats: StandbyStats,
  step: Extract<Step, { kind: "follow" | "resync" }>,
  r: StepResult,
  at: number,
) {
  stats.appliedUntil = step.at.getTime() / 1000;
  if (r.changeTimes.length === 0) {
    if (step.kind === "resync") stats.lag = Math.max(0, (at - step.at.getTime()) / 1000);
    return;
  }
  let newest = 0;
  for (const t of r.changeTimes) {
    stats.observeLag(Math.max(0, (at - t) / 1000));
    newest = Math.max(newest, t);
  }
  stats.lag = Math.max(0, (at - newest) / 1000);
}

/** Each refused object by name, outcome and (at debug only: it may quote values) the server's reason. */
function refused(options: StandbyOptions, r: StepResult): void {
  for (const p of r.refused) {
    const where = { resource: p.resource, namespace: p.namespace, name: p.name, outcome: p.outcome };
    options.log.warn("target refused an object", where);
    options.log.debug("target refused an object: reason", { ...where, reason: p.reason });
  }
}

const describe = (e: unknown) => (e instanceof Error ? e.message.split("\n")[0]! : String(e));
