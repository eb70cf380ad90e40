import { Command } from "commander";
import { CrdBackupError } from "../../src/errors.ts";
import { RESTORE_CONCURRENCY } from "../../src/restore/options.ts";
import { runStandby } from "../../src/standby/follow.ts";
import { StandbyStats, standbyMetrics } from "../../src/standby/metrics.ts";
import { parseInterval } from "../../src/units/duration.ts";
import { addTrustOptions, type TrustFlags } from "../signing.ts";
import {
  addCommonOptions,
  addFilterOptions,
  addIdentityOptions,
  addStorageOptions,
  contentStorageFrom,
  filtersFrom,
  kubeClientFrom,
  loggerFrom,
  metricsServerFrom,
  positiveInt,
  type CommonFlags,
  type FilterFlags,
  type IdentityFlags,
  type StorageFlags,
} from "../options.ts";
import type { RunContext } from "../run.ts";

type Flags = CommonFlags &
  StorageFlags &
  IdentityFlags &
  TrustFlags &
  FilterFlags & {
    targetKubeconfig?: string;
    targetContext?: string;
    targetInCluster?: boolean;
    cluster?: string;
    syncCrds?: boolean;
    poll: string;
    leaseDuration: string;
    stateNamespace: string;
    metricsAddr?: string;
    concurrency: number;
    requestTimeout: number;
  };

export function standbyCommand(ctx: RunContext): Command {
  const cmd = new Command("standby").description(
    "keep a target cluster equal to the newest state of a cluster's journal: a --sync, then every segment as it lands, until SIGTERM/SIGINT",
  );
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  addTrustOptions(cmd);
  addFilterOptions(cmd);
  addCommonOptions(cmd);
  cmd
    .option("--target-kubeconfig <path>", "kubeconfig of the target (standby) cluster")
    .option("--target-context <name>", "kubeconfig context of the target (standby) cluster")
    .option(
      "--target-in-cluster",
      "the target is the cluster this pod runs in, as its service account (the Helm chart's standby)",
    )
    .option(
      "--cluster <uid>",
      "whose journal, when the location holds several clusters' (a unique prefix of the uid)",
    )
    .option("--sync-crds", "also delete the target's CRDs that the source no longer has (and their objects)")
    // 1s: with the recorder's 5 s flush, a change reaches the target within about 7 s (bench/standby.ts)
    .option("--poll <duration>", "how often to list the journal for new segments", "1s")
    .option(
      "--state-namespace <namespace>",
      "where the target keeps the resume point and the lease",
      "crd-backup",
    )
    .option(
      "--lease-duration <duration>",
      "how long the lease holds without renewal: after a crash, a new standby starts once it expires",
      "30s",
    )
    .option("--concurrency <n>", "objects written at once", positiveInt("--concurrency"), RESTORE_CONCURRENCY)
    .option(
      "--request-timeout <seconds>",
      "time limit for one API request",
      positiveInt("--request-timeout"),
      60,
    )
    .option("--metrics-addr <host:port>", "serve Prometheus metrics on http://host:port/metrics")
    .action(async (flags: Flags) => {
      // the source's kubeconfig is often the default one: the target is never taken by default
      if (!flags.targetKubeconfig && !flags.targetContext && !flags.targetInCluster)
        throw new CrdBackupError(
          "USAGE",
          "say which cluster the standby writes to: --target-context, --target-kubeconfig or --target-in-cluster",
        );
      if (flags.targetInCluster && (flags.targetKubeconfig || flags.targetContext))
        throw new CrdBackupError(
          "USAGE",
          "--target-in-cluster takes the pod's service account: give it without --target-context and --target-kubeconfig",
        );
      const pollMs = parseInterval("--poll", flags.poll);
      const leaseMs = parseInterval("--lease-duration", flags.leaseDuration);
      if (leaseMs < 3000)
        throw new CrdBackupError("USAGE", `--lease-duration ${flags.leaseDuration}: at least 3s`);
      const storage = await contentStorageFrom(flags);
      const log = loggerFrom(flags);
      const stats = new StandbyStats();
      const client = await kubeClientFrom(
        {
          kubeconfig: flags.targetKubeconfig,
          context: flags.targetContext,
          ...(flags.targetInCluster ? { inCluster: true } : {}),
          qps: 0,
          burst: 100,
          requestTimeout: flags.requestTimeout,
        },
        flags.concurrency + 4,
      );
      const server = await metricsServerFrom(flags, log, () => standbyMetrics(stats));
      try {
        await runStandby({
          client,
          storage,
          crds: Boolean(flags.syncCrds),
          log,
          stats,
          signal: ctx.signal,
          ...(flags.cluster !== undefined ? { cluster: flags.cluster } : {}),
          stateNamespace: flags.stateNamespace,
          pollMs,
          leaseSeconds: Math.ceil(leaseMs / 1000),
          options: {
            filters: filtersFrom(flags),
            namespaceMap: new Map(),
            existing: "update",
            existingFor: new Map(),
            restoreStatus: true,
            dryRun: false,
            waitTimeoutMs: 60_000,
            concurrency: flags.concurrency,
          },
        });
      } finally {
        await server?.close();
        client.close();
      }
    });
  return cmd;
}
