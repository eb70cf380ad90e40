import { CronJob, CronTime } from "cron";
import { CrdBackupError } from "../errors.ts";
import { silentLogger, type Logger } from "../report/log.ts";

export interface ScheduleOptions {
  cron: string;
  /** IANA zone the expression is read in; the host's zone when absent. */
  timeZone?: string;
  /** Stops the schedule: no new run starts, and the run in flight is abandoned through the same signal. */
  signal: AbortSignal;
  log?: Logger;
  /** Called when a tick finds the previous run still going. */
  onSkip?: () => void;
}

/** Checks an expression (5 fields, or 6 with seconds) and a zone up front: a usage error, not a crash at the first tick. */
export function validateSchedule(cron: string, timeZone?: string): void {
  try {
    new CronTime(cron, timeZone ?? null);
  } catch (e) {
    const what =
      timeZone && /zone/i.test((e as Error).message) ? `--timezone "${timeZone}"` : `--cron "${cron}"`;
    throw new CrdBackupError("USAGE", `${what}: ${(e as Error).message}`);
  }
}

/**
 * Runs `run` on a cron schedule until `signal` fires. Runs never overlap: a tick that finds the
 * previous run still going is skipped (and reported), like a CronJob with concurrencyPolicy
 * Forbid. Resolves once stopped and the run in flight, if any, has ended.
 */
export async function runOnSchedule(options: ScheduleOptions, run: () => Promise<void>): Promise<void> {
  validateSchedule(options.cron, options.timeZone);
  const log = options.log ?? silentLogger;
  let inFlight: Promise<void> | undefined;
  const job = CronJob.from({
    cronTime: options.cron,
    timeZone: options.timeZone ?? null,
    // a late tick (a busy event loop) still runs rather than being dropped with a console warning
    threshold: 3600_000,
    start: false,
    onTick: () => {
      if (options.signal.aborted) return;
      if (inFlight) {
        log.warn("scheduled snapshot skipped: the previous one is still running");
        options.onSkip?.();
        return;
      }
      inFlight = run()
        .catch((e: unknown) => log.error("scheduled run failed", { error: (e as Error).message }))
        .finally(() => {
          inFlight = undefined;
          const next = job.nextDate();
          if (!options.signal.aborted) log.info("next snapshot", { at: next.toISO() ?? "" });
        });
    },
  });
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) return resolve();
    options.signal.addEventListener("abort", () => resolve(), { once: true });
    job.start();
    log.info("schedule started", {
      cron: options.cron,
      timeZone: options.timeZone,
      next: job.nextDate().toISO() ?? "",
    });
  });
  await job.stop();
  await inFlight;
  log.info("schedule stopped");
}
