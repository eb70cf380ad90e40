import { addTrustOptions } from "../signing.ts";
import { writeFile } from "node:fs/promises";
import { Command } from "commander";
import { runDrill, type DrillReport } from "../../src/drill/drill.ts";
import { drillMetrics, summarizeDrill } from "../../src/drill/report.ts";
import { writeMetricsFile } from "../../src/report/metrics.ts";
import { validateNamespacePrefix } from "../../src/restore/options.ts";
import { CrdBackupError, refusalSaying } from "../../src/errors.ts";
import { EXIT, oneLine } from "../exit-codes.ts";
import {
  addCommonOptions,
  addFilterOptions,
  addKubeOptions,
  addStorageOptions,
  filtersFrom,
  kubeClientFrom,
  loggerFrom,
  positiveInt,
  addIdentityOptions,
  contentStorageFrom,
  type CommonFlags,
  type FilterFlags,
  type KubeFlags,
  type StorageFlags,
} from "../options.ts";
import { addAtOptions, describeRef, snapshotRefFrom, type AtFlags } from "../at.ts";
import { printJson, printLines } from "../output.ts";
import type { RunContext } from "../run.ts";
import { addNameOption } from "../by-name.ts";
import { addModifierOptions, modifiersFrom } from "./modifiers.ts";
import { RESTORE_CONCURRENCY } from "../../src/restore/options.ts";
import { saveMemoryFor } from "../gc.ts";

type Flags = CommonFlags &
  KubeFlags &
  StorageFlags &
  AtFlags &
  FilterFlags & {
    targetContext?: string;
    targetKubeconfig?: string;
    namespacePrefix?: string;
    restoreStatus?: boolean;
    cleanup?: boolean;
    removeFinalizers?: boolean;
    waitTimeout: number;
    concurrency: number;
    maxNames: number;
    report?: string;
    metricsFile?: string;
    resourceModifiers?: string[];
  };

// a drill report is small: names are capped by --max-names
const writeJsonFile = (file: string, value: object) => writeFile(file, JSON.stringify(value, null, 2) + "\n");

export function drillCommand(ctx: RunContext): Command {
  const cmd = new Command("drill")
    .description(
      "rehearse a recovery: verify a snapshot, restore it into another cluster or scratch namespaces, check every object, time it",
    )
    .argument("[snapshot]", 'a snapshot id, or "latest" (or --at instead)');
  addAtOptions(cmd);
  addKubeOptions(cmd);
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  addTrustOptions(cmd);
  addFilterOptions(cmd);
  addNameOption(cmd);
  addCommonOptions(cmd);
  addModifierOptions(cmd);
  cmd
    .option("--target-context <name>", "kubeconfig context of the cluster to drill into (default: --context)")
    .option("--target-kubeconfig <file>", "kubeconfig of the cluster to drill into (default: --kubeconfig)")
    .option(
      "--namespace-prefix <prefix>",
      "restore every namespace as <prefix><name>: how to drill on the snapshot's own cluster",
    )
    .option("--restore-status", "restore status too, and check it")
    .option(
      "--cleanup",
      "delete what the drill created (found by its crd-backup.io/drill label) when it is done",
    )
    .option(
      "--remove-finalizers",
      "with --cleanup: clear the finalizers that still hold deleted drill objects (their controllers may not act on drill copies)",
    )
    .option(
      "--wait-timeout <seconds>",
      "how long to wait for each CRD to be Established",
      positiveInt("--wait-timeout"),
      60,
    )
    .option("--concurrency <n>", "objects written at once", positiveInt("--concurrency"), RESTORE_CONCURRENCY)
    .option(
      "--max-names <n>",
      "missing or differing objects named per resource",
      positiveInt("--max-names"),
      20,
    )
    .option("--report <file>", "write the drill report as JSON")
    .option("--metrics-file <file>", "write the result in Prometheus textfile format")
    .action(async (arg: string | undefined, flags: Flags) => {
      const ref = snapshotRefFrom(arg, flags);
      const prefix =
        flags.namespacePrefix === undefined ? undefined : validateNamespacePrefix(flags.namespacePrefix);
      if (flags.removeFinalizers && !flags.cleanup)
        throw new CrdBackupError("USAGE", "--remove-finalizers goes with --cleanup");
      const filters = filtersFrom(flags);
      const modifiers = await modifiersFrom(flags);
      const storage = await contentStorageFrom(flags);
      const client = await kubeClientFrom(
        {
          ...flags,
          kubeconfig: flags.targetKubeconfig ?? flags.kubeconfig,
          context: flags.targetContext ?? flags.context,
        },
        flags.concurrency + 2,
      );
      let report: DrillReport;
      try {
        report = await runDrill(
          client,
          storage,
          ref,
          {
            filters,
            namespacePrefix: prefix,
            restoreStatus: Boolean(flags.restoreStatus),
            waitTimeoutMs: flags.waitTimeout * 1000,
            concurrency: flags.concurrency,
            cleanup: Boolean(flags.cleanup),
            removeFinalizers: Boolean(flags.removeFinalizers),
            maxNames: flags.maxNames,
            signal: ctx.signal,
            modifiers,
            onSourceSize: saveMemoryFor,
          },
          loggerFrom(flags),
        );
      } catch (caught) {
        // a refused snapshot or segment fails the drill before its restore writes anything
        const e = refusalSaying(caught, "nothing was restored");
        // a drill that could not run is a failed drill: the files a CronJob alerts on must say so
        if (e instanceof CrdBackupError && e.code === "USAGE") throw e;
        const failed = {
          result: "fail" as const,
          reasons: [oneLine(e)],
          finishedAt: new Date().toISOString(),
        };
        if (flags.report) await writeJsonFile(flags.report, { snapshot: describeRef(ref), ...failed });
        if (flags.metricsFile) await writeMetricsFile(flags.metricsFile, drillMetrics(failed));
        throw e;
      } finally {
        client.close();
      }
      if (flags.report) await writeJsonFile(flags.report, report);
      if (flags.metricsFile) await writeMetricsFile(flags.metricsFile, drillMetrics(report));
      if (flags.output === "json") printJson(report);
      else printLines(summarizeDrill(report));
      ctx.exitCode = report.result === "pass" ? EXIT.OK : EXIT.FAILURE;
    });
  return cmd;
}
