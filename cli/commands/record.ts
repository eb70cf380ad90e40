import { addSignOptions, withSignKey, type SignFlags } from "../signing.ts";
import { Command } from "commander";
import { record } from "../../src/journal/record/recorder.ts";
import { defaultSpoolDir, ensurePrivateDir } from "../../src/journal/record/spool-dir.ts";
import { JournalStats, journalMetrics } from "../../src/report/journal-metrics.ts";
import { parseInterval } from "../../src/units/duration.ts";
import { parseSize } from "../../src/units/size.ts";
import {
  addCommonOptions,
  addEncryptionOptions,
  addFilterOptions,
  addKubeOptions,
  addListOptions,
  addObjectLockOptions,
  addStorageOptions,
  kubeClientFrom,
  loggerFrom,
  metricsServerFrom,
  snapshotOptionsFrom,
  storageFrom,
  type CommonFlags,
  type KubeFlags,
  type ObjectLockFlags,
  type SnapshotFlags,
  type StorageFlags,
} from "../options.ts";
import type { RunContext } from "../run.ts";

type Flags = CommonFlags &
  SignFlags &
  KubeFlags &
  StorageFlags &
  ObjectLockFlags &
  SnapshotFlags & {
    flushInterval: string;
    baseInterval: string;
    spoolDir?: string;
    spoolSize: string;
    metricsAddr?: string;
  };

/** Watches held open at once, beyond which a cluster's resources wait for a connection. */
const MAX_WATCHES = 2000;

export function recordCommand(ctx: RunContext): Command {
  const cmd = new Command("record").description(
    "record every change to the custom resources into a journal, after a base snapshot, until SIGTERM/SIGINT",
  );
  addKubeOptions(cmd);
  addStorageOptions(cmd);
  // every segment and base snapshot written gets the retention (storageFrom reads the flags)
  addObjectLockOptions(cmd);
  // bases and journal segments alike, to the same recipients: the recorder holds no key that reads them
  addEncryptionOptions(cmd);
  // bases and segments alike are signed, each before it becomes visible
  addSignOptions(cmd);
  addFilterOptions(cmd);
  addCommonOptions(cmd);
  cmd
    .option(
      "--flush-interval <duration>",
      "write a journal segment this often (at most this much is lost to a crash)",
      "5s",
    )
    .option("--base-interval <duration>", "take a new base snapshot and start a new chain this often", "24h")
    .option(
      "--spool-dir <dir>",
      "where segments wait while storage is unreachable (default: $TMPDIR/crd-backup-spool-<uid>, mode 0700, refused if anyone else could write to it)",
    )
    .option("--spool-size <bytes>", "the most the spool may hold, e.g. 256Mi or 1Gi", "256Mi");
  addListOptions(cmd)
    .option("--metrics-addr <host:port>", "serve Prometheus metrics on http://host:port/metrics")
    .action(async (flags: Flags) => {
      const options = await snapshotOptionsFrom(flags, {
        record: { flushInterval: flags.flushInterval, baseInterval: flags.baseInterval },
      });
      const flushIntervalMs = parseInterval("--flush-interval", flags.flushInterval);
      const baseIntervalMs = parseInterval("--base-interval", flags.baseInterval);
      const spoolBytes = parseSize("--spool-size", flags.spoolSize);
      // what the spool holds is uploaded on start: the shared default must be this user's alone
      const spoolDir = flags.spoolDir ?? (await ensurePrivateDir(defaultSpoolDir()));
      const storage = await withSignKey(storageFrom(flags), flags);
      const log = loggerFrom(flags);
      const stats = new JournalStats();
      const server = await metricsServerFrom(flags, log, () => journalMetrics(stats));
      const client = await kubeClientFrom(flags, flags.concurrency + 2);
      const watchClient = await kubeClientFrom(flags, MAX_WATCHES);
      try {
        await record({ client, watchClient }, storage, {
          ...options,
          flushIntervalMs,
          baseIntervalMs,
          spoolDir,
          spoolBytes,
          signal: ctx.signal,
          log,
          stats,
        });
      } finally {
        await server?.close();
        client.close();
        watchClient.close();
      }
    });
  return cmd;
}
