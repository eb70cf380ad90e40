import { Command } from "commander";
import { takeSnapshot } from "../../src/snapshot/take.ts";
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
  storageFrom,
  type CommonFlags,
  type FilterFlags,
  type KubeFlags,
  type StorageFlags,
} from "../options.ts";
import { formatBytes, printJson, printLines } from "../output.ts";
import { progressDisplay } from "../progress.ts";
import type { RunContext } from "../run.ts";

type Flags = CommonFlags & KubeFlags & StorageFlags & FilterFlags & { pageSize: number; concurrency: number };

export function snapshotCommand(ctx: RunContext): Command {
  const cmd = new Command("snapshot").description("back up every custom resource (and its CRD) to storage");
  addKubeOptions(cmd);
  addStorageOptions(cmd);
  addFilterOptions(cmd);
  addCommonOptions(cmd);
  cmd
    .option("--page-size <n>", "objects per list call", positiveInt("--page-size"), 500)
    .option("--concurrency <n>", "resources listed at once", positiveInt("--concurrency"), 4)
    .action(async (flags: Flags) => {
      const filters = filtersFrom(flags);
      const storage = await storageFrom(flags);
      const client = await kubeClientFrom(flags, flags.concurrency + 2);
      const progress =
        flags.output === "text" ? progressDisplay() : { update: () => undefined, done: () => undefined };
      try {
        const result = await takeSnapshot(client, storage, {
          filters,
          pageSize: flags.pageSize,
          concurrency: flags.concurrency,
          signal: ctx.signal,
          log: loggerFrom(flags),
          onProgress: progress.update,
          recordedOptions: {
            pageSize: flags.pageSize,
            concurrency: flags.concurrency,
            filters: { ...filters, selector: filters.selector ?? null },
          },
        });
        progress.done();
        const m = result.manifest;
        if (flags.output === "json") {
          printJson({
            id: result.id,
            status: m.status,
            storage: result.location,
            counts: m.counts,
            archive: m.archive,
            resources: m.resources.map((r) => ({
              group: r.group,
              version: r.version,
              resource: r.plural,
              namespaced: r.namespaced,
              count: r.count,
              consistent: r.consistent,
              errors: r.errors,
            })),
          });
        } else {
          const failed = m.resources.filter((r) => r.errors.length > 0);
          printLines([
            `snapshot ${result.id} ${m.status}: ${m.resources.length} resources, ${m.counts.objects} objects, ` +
              `${m.counts.crds} CRDs, ${m.counts.namespaces} namespaces, ${formatBytes(m.archive.size)} in ${result.location}`,
            ...failed.map(
              (r) => `  not captured: ${r.plural}.${r.group}: ${r.errors.map((e) => e.message).join("; ")}`,
            ),
          ]);
        }
        ctx.exitCode = m.status === "partial" ? EXIT.PARTIAL : EXIT.OK;
      } finally {
        progress.done();
        client.close();
      }
    });
  return cmd;
}
