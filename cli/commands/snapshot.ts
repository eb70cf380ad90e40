import { withSignKey } from "../signing.ts";
import { Command } from "commander";
import { writeMetricsFile } from "../../src/report/metrics.ts";
import { emptyRunState, previousRunState, snapshotMetrics } from "../../src/report/snapshot-metrics.ts";
import { runSnapshotJob } from "../../src/schedule/job.ts";
import { EXIT, oneLine } from "../exit-codes.ts";
import { pruneSummary } from "./prune.ts";
import {
  addListOptions,
  addSnapshotJobOptions,
  kubeClientFrom,
  loggerFrom,
  retentionFrom,
  snapshotOptionsFrom,
  storageFrom,
  type SnapshotJobFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines } from "../output.ts";
import { progressDisplay } from "../progress.ts";
import type { RunContext } from "../run.ts";

type Flags = SnapshotJobFlags & { metricsFile?: string };

export function snapshotCommand(ctx: RunContext): Command {
  const cmd = new Command("snapshot").description("back up every custom resource (and its CRD) to storage");
  addSnapshotJobOptions(cmd);
  addListOptions(cmd)
    .option("--metrics-file <file>", "write the run's metrics in Prometheus textfile format")
    .action(async (flags: Flags) => {
      const options = await snapshotOptionsFrom(flags);
      const retention = retentionFrom(flags);
      const storage = await withSignKey(storageFrom(flags), flags);
      const client = await kubeClientFrom(flags, flags.concurrency + 2);
      const progress =
        flags.output === "text" ? progressDisplay() : { update: () => undefined, done: () => undefined };
      const log = loggerFrom(flags);
      try {
        const job = await runSnapshotJob(
          client,
          storage,
          flags.metricsFile ? await previousRunState(flags.metricsFile) : emptyRunState(),
          {
            snapshot: { ...options, signal: ctx.signal, log, onProgress: progress.update },
            retention,
            log,
          },
        );
        if (flags.metricsFile) await writeMetricsFile(flags.metricsFile, snapshotMetrics(job.state));
        if (!job.snapshot) throw job.error;
        const result = job.snapshot;
        progress.done();
        const m = result.manifest;
        if (flags.output === "json") {
          printJson({
            id: result.id,
            status: m.status,
            storage: result.location,
            counts: m.counts,
            archive: m.archive,
            ...(m.encryption
              ? { encryption: { recipients: m.encryption.recipients, stored: m.encryption.stored } }
              : {}),
            ...(job.prune ? { pruned: job.prune.clusters.flatMap((c) => c.remove.map((d) => d.id)) } : {}),
            resources: m.resources.map((r) => ({
              group: r.group,
              version: r.version,
              resource: r.plural,
              namespaced: r.namespaced,
              count: r.count,
              consistent: r.consistent,
              errors: r.errors,
            })),
            namespaceErrors: m.namespaceErrors,
            ...(result.signedBy ? { signedBy: result.signedBy } : {}),
          });
        } else {
          const failed = m.resources.filter((r) => r.errors.length > 0);
          printLines([
            `snapshot ${result.id} ${m.status}: ${m.resources.length} resources, ${m.counts.objects} objects, ` +
              `${m.counts.crds} CRDs, ${m.counts.namespaces} namespaces, ${formatBytes(m.archive.size)} in ${result.location}` +
              (m.encryption ? `, encrypted to ${m.encryption.recipients.length} age recipient(s)` : "") +
              (result.signedBy ? `, signed by ${result.signedBy}` : ""),
            ...failed.map(
              (r) => `  not captured: ${r.plural}.${r.group}: ${r.errors.map((e) => e.message).join("; ")}`,
            ),
            ...m.namespaceErrors.map((e) => `  namespace not captured: ${e.namespace}: ${e.message}`),
            ...(job.prune ? pruneSummary(job.prune) : []),
          ]);
        }
        // the snapshot is there and usable: partial, not a failure that a CronJob would retry
        if (job.error) {
          process.stderr.write(
            `crd-backup: snapshot ${result.id} was taken, but retention failed: ${oneLine(job.error)}\n`,
          );
        }
        ctx.exitCode = m.status === "partial" || job.error ? EXIT.PARTIAL : EXIT.OK;
      } finally {
        progress.done();
        client.close();
      }
    });
  return cmd;
}
