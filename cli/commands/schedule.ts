import { withSignKey } from "../signing.ts";
import { Command } from "commander";
import { writeMetricsFile } from "../../src/report/metrics.ts";
import { emptyRunState, previousRunState, snapshotMetrics } from "../../src/report/snapshot-metrics.ts";
import { runSnapshotJob } from "../../src/schedule/job.ts";
import { runOnSchedule, validateSchedule } from "../../src/schedule/scheduler.ts";
import { oneLine } from "../exit-codes.ts";
import {
  addListOptions,
  addSnapshotJobOptions,
  kubeClientFrom,
  loggerFrom,
  metricsServerFrom,
  retentionFrom,
  snapshotOptionsFrom,
  storageFrom,
  type SnapshotJobFlags,
} from "../options.ts";
import type { RunContext } from "../run.ts";

type Flags = SnapshotJobFlags & {
  cron: string;
  timezone?: string;
  metricsFile?: string;
  metricsAddr?: string;
};

export function scheduleCommand(ctx: RunContext): Command {
  const cmd = new Command("schedule").description(
    "take snapshots on a cron schedule until SIGTERM/SIGINT, with retention after each (for hosts without a CronJob)",
  );
  addSnapshotJobOptions(cmd);
  cmd
    .requiredOption(
      "--cron <expr>",
      'when to snapshot: 5 cron fields, or 6 with seconds first ("0 */6 * * *")',
    )
    .option("--timezone <zone>", "IANA time zone the expression is read in (default: the host's)");
  addListOptions(cmd)
    .option("--metrics-addr <host:port>", "serve Prometheus metrics on http://host:port/metrics")
    .option("--metrics-file <file>", "also write the metrics in Prometheus textfile format after each run")
    .action(async (flags: Flags) => {
      validateSchedule(flags.cron, flags.timezone);
      const options = await snapshotOptionsFrom(flags, { schedule: flags.cron });
      const retention = retentionFrom(flags);
      const storage = await withSignKey(storageFrom(flags), flags);
      const client = await kubeClientFrom(flags, flags.concurrency + 2);
      const log = loggerFrom(flags);
      let state = flags.metricsFile ? await previousRunState(flags.metricsFile) : emptyRunState();
      const server = await metricsServerFrom(flags, log, () => snapshotMetrics(state));
      try {
        await runOnSchedule(
          {
            cron: flags.cron,
            timeZone: flags.timezone,
            signal: ctx.signal,
            log,
            onSkip: () => (state = { ...state, skipped: state.skipped + 1 }),
          },
          async () => {
            log.info("scheduled run started");
            const job = await runSnapshotJob(client, storage, state, {
              snapshot: { ...options, signal: ctx.signal, log },
              retention,
              log,
            });
            // a run abandoned because we are stopping is not a failed backup
            if (ctx.signal.aborted && !job.snapshot) {
              log.info("snapshot in flight abandoned: nothing of it is visible");
              return;
            }
            // ticks skipped while this run went on were counted in the meantime
            state = { ...job.state, skipped: state.skipped };
            const m = job.snapshot?.manifest;
            const pruned = job.prune?.clusters.reduce((n, c) => n + c.remove.length, 0);
            if (m) {
              log.info("scheduled run finished", {
                snapshot: job.snapshot!.id,
                status: m.status,
                objects: m.counts.objects,
                seconds: state.lastRun?.durationSeconds,
                pruned,
              });
            }
            if (job.error)
              log.error(m ? "retention failed" : "snapshot failed", { error: oneLine(job.error) });
            if (flags.metricsFile) await writeMetricsFile(flags.metricsFile, snapshotMetrics(state));
          },
        );
      } finally {
        await server?.close();
        client.close();
      }
    });
  return cmd;
}
