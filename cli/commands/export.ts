import { addTrustOptions } from "../signing.ts";
import { Command, Option } from "commander";
import { exportSnapshot } from "../../src/export/export.ts";
import { EXPORT_FORMATS, type ExportFormat } from "../../src/export/layout.ts";
import { createLogger, type LogLevel } from "../../src/report/log.ts";
import {
  addIdentityOptions,
  addStorageOptions,
  contentStorageFrom,
  filtersFrom,
  type StorageFlags,
} from "../options.ts";
import { addAtOptions, snapshotRefFrom, type AtFlags } from "../at.ts";
import { printLines } from "../output.ts";
import type { RunContext } from "../run.ts";
import { addNameOption } from "../by-name.ts";
import { EXIT } from "../exit-codes.ts";
import { addModifierOptions, modifiersFrom } from "./modifiers.ts";

type Flags = StorageFlags &
  AtFlags & {
    to: string;
    output: ExportFormat;
    cleanForApply?: boolean;
    force?: boolean;
    logLevel: LogLevel;
    resourceModifiers?: string[];
    name?: string[];
  };

export function exportCommand(ctx: RunContext): Command {
  const cmd = new Command("export")
    .description(
      "write a snapshot as plain YAML or JSON manifests, one file per object, for review and GitOps",
    )
    .argument("[snapshot]", 'a snapshot id, or "latest" (or --at instead)')
    .requiredOption("--to <dir>", "the directory to write (created; replaced only with --force)");
  addAtOptions(cmd);
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  addTrustOptions(cmd);
  addModifierOptions(cmd);
  addNameOption(cmd);
  // -o picks the manifests' format here, not the command's output (one summary line)
  cmd
    .addOption(new Option("-o, --output <format>", "manifest format").choices(EXPORT_FORMATS).default("yaml"))
    .option("--clean-for-apply", "leave out status, ownerReferences and last-applied-configuration")
    .option("--force", "replace --to if it is not empty (never a directory holding .git)")
    .addOption(
      new Option("--log-level <level>", "log detail on stderr")
        .choices(["debug", "info", "warn", "error"])
        .default("info"),
    )
    .action(async (arg: string | undefined, flags: Flags) => {
      const ref = snapshotRefFrom(arg, flags);
      const modifiers = await modifiersFrom(flags);
      const storage = await contentStorageFrom(flags);
      const result = await exportSnapshot(storage, ref, flags.to, {
        format: flags.output,
        cleanForApply: Boolean(flags.cleanForApply),
        force: Boolean(flags.force),
        signal: ctx.signal,
        log: createLogger({ level: flags.logLevel }),
        modifiers,
        ...(flags.name ? { filters: filtersFrom({ name: flags.name }) } : {}),
      });
      const m = result.modifiers;
      const { crds, namespaces, objects } = result.counts;
      printLines([
        `exported snapshot ${result.snapshotId} to ${result.to}: ${crds} CRDs, ${namespaces} namespaces, ${objects} objects as ${result.format}${result.cleanForApply ? ", cleaned for kubectl apply" : ""}`,
        ...(result.status === "partial"
          ? [`note: snapshot ${result.snapshotId} is partial; run crd-backup inspect for what it is missing`]
          : []),
        ...(m
          ? [
              `resource modifiers: ${m.matched} objects matched, ${m.dropped} dropped, ${m.failed.length} failed (not exported)`,
              ...m.failed.map(
                (f) =>
                  `  failed: ${f.resource} ${f.namespace ? `${f.namespace}/` : ""}${f.name}: ${f.reason}`,
              ),
            ]
          : []),
      ]);
      if (m?.failed.length) ctx.exitCode = EXIT.PARTIAL;
    });
  return cmd;
}
