import { addTrustOptions } from "../signing.ts";
import { createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import { Command, Option } from "commander";
import {
  EXISTING_POLICIES,
  parseExistingFor,
  parseNamespaceMap,
  type ExistingPolicy,
} from "../../src/restore/options.ts";
import { CrdBackupError, refusalSaying } from "../../src/errors.ts";
import { webhookTarget } from "../../src/restore/guards.ts";
import type { PlanView } from "../../src/restore/options.ts";
import { parseVersionMap, resourceVersions, versionLine } from "../../src/restore/versions.ts";
import { reportSummary, summarize } from "../../src/restore/report.ts";
import { restoreSnapshot } from "../../src/restore/restore.ts";
import { EXIT } from "../exit-codes.ts";
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
import { addNameOption, oneObjectFrom, pickOne } from "../by-name.ts";
import { printLines, writeReportJson } from "../output.ts";
import { addModifierOptions, modifiersFrom } from "./modifiers.ts";
import type { RunContext } from "../run.ts";
import { RESTORE_CONCURRENCY } from "../../src/restore/options.ts";
import { saveMemoryFor } from "../gc.ts";

type Flags = CommonFlags &
  KubeFlags &
  StorageFlags &
  AtFlags &
  FilterFlags & {
    namespaceMap?: string[];
    versionMap?: string[];
    existing: ExistingPolicy;
    existingFor?: string[];
    restoreStatus?: boolean;
    dryRun?: boolean;
    waitTimeout: number;
    concurrency: number;
    report?: string;
    resourceModifiers?: string[];
    sync?: boolean;
    syncCrds?: boolean;
    namespace?: string;
  };

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * What the plan holds that a person must see before anything is written: each resource whose
 * objects were archived at a version the target's CRD does not simply store (converted by the
 * server, not served, mapped), with the verdict; each CRD the
 * restore creates with a conversion webhook, and where that webhook makes the API server send
 * requests.
 */
function planLines(plan: PlanView, dryRun: boolean): string[] {
  return [
    // "same" needs no word (-o json and --report list every resource's verdict)
    ...resourceVersions(plan.resources.values()).flatMap((v) =>
      v.verdict === "same" ? [] : [`version: ${versionLine(v)}`],
    ),
    ...plan.crds.flatMap((crd) =>
      crd.webhook
        ? [
            `conversion webhook: CRD ${crd.name} ${dryRun ? "would be" : "is"} created with a conversion webhook; the API server will call ${webhookTarget(crd.webhook)}`,
          ]
        : [],
    ),
  ];
}

/** --sync writes what differs and deletes: the flags that say otherwise do not go with it. */
function checkSyncFlags(cmd: Command, flags: Flags): void {
  if (flags.syncCrds && !flags.sync)
    throw new CrdBackupError("USAGE", "--sync-crds is a part of --sync: give both");
  if (!flags.sync) return;
  if (cmd.getOptionValueSource("existing") === "cli" || flags.existingFor?.length)
    throw new CrdBackupError(
      "USAGE",
      "--sync updates every object that differs from the source: --existing and --existing-for do not apply",
    );
}

export function restoreCommand(ctx: RunContext): Command {
  const cmd = new Command("restore")
    .description("restore a snapshot: CRDs first, then namespaces, then objects in dependency order")
    .argument(
      "[snapshot]",
      'a snapshot id, or "latest" (or --at instead); or <resource>/<name> with -n and --at: that one object as it was then',
    );
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
    .option(
      "--namespace-map <old=new>",
      "restore objects of namespace old into namespace new (repeatable)",
      collect,
    )
    .option(
      "--version-map <resource=from:to>",
      "write objects of resource (plural.group) archived at version from through served version to; the server validates each first (repeatable)",
      collect,
    )
    .addOption(
      new Option("--existing <policy>", "what to do with objects that already exist")
        .choices(EXISTING_POLICIES)
        .default("skip"),
    )
    .option(
      "--existing-for <resource=policy>",
      "per-resource override, e.g. certificates.cert-manager.io=update (repeatable)",
      collect,
    )
    .option("--restore-status", "also restore status (through the /status subresource where the CRD has one)")
    .option("--dry-run", "plan and validate every write with server-side dry run; change nothing")
    .option(
      "--wait-timeout <seconds>",
      "how long to wait for each CRD to be Established",
      positiveInt("--wait-timeout"),
      60,
    )
    .option("--concurrency <n>", "objects written at once", positiveInt("--concurrency"), RESTORE_CONCURRENCY)
    .option("--report <file>", "write the full per-object report as JSON")
    .option(
      "--sync",
      "make the selected objects equal to the source: create, update what differs, and delete what it does not have",
    )
    .option(
      "--sync-crds",
      "with --sync: also delete the selected CRDs the source does not have (and their objects)",
    )
    .option("-n, --namespace <namespace>", "with <resource>/<name>: the object's namespace")
    .action(async (arg: string | undefined, flags: Flags) => {
      const one = oneObjectFrom(arg, flags);
      const ref = snapshotRefFrom(one ? undefined : arg, flags);
      const dryRun = Boolean(flags.dryRun);
      checkSyncFlags(cmd, flags);
      const storage = await contentStorageFrom(flags);
      const picked = one && (await pickOne(storage, one, flags));
      const options = {
        filters: picked?.filters ?? filtersFrom(flags),
        namespaceMap: parseNamespaceMap(flags.namespaceMap ?? []),
        versionMap: parseVersionMap(flags.versionMap ?? []),
        existing: flags.existing,
        existingFor: parseExistingFor(flags.existingFor ?? []),
        restoreStatus: Boolean(flags.restoreStatus),
        dryRun,
        waitTimeoutMs: flags.waitTimeout * 1000,
        concurrency: flags.concurrency,
        signal: ctx.signal,
        modifiers: await modifiersFrom(flags),
        ...(flags.sync ? { sync: { crds: Boolean(flags.syncCrds) } } : {}),
        onSourceSize: saveMemoryFor,
        // printed as soon as the plan is made, before the first write (-o json keeps stdout JSON; the log says it too)
        onPlan: (plan: PlanView) => {
          if (picked && plan.objects.count === 0) throw picked.missing(describeRef(ref));
          if (flags.output !== "json") printLines(planLines(plan, dryRun));
        },
      };
      const client = await kubeClientFrom(flags, flags.concurrency + 2);
      try {
        await using report = await restoreSnapshot(client, storage, ref, options, loggerFrom(flags));
        if (flags.report) {
          const file = createWriteStream(flags.report);
          await writeReportJson(file, reportSummary(report), report.entries());
          file.end();
          await finished(file);
        }
        if (flags.output === "json")
          await writeReportJson(process.stdout, reportSummary(report), report.entries());
        else printLines(summarize(report));
        ctx.exitCode =
          report.status === "success" ? EXIT.OK : report.status === "partial" ? EXIT.PARTIAL : EXIT.FAILURE;
      } catch (e) {
        // a refused snapshot or segment fails before the first write
        throw refusalSaying(e, "nothing was restored");
      } finally {
        client.close();
      }
    });
  return cmd;
}
