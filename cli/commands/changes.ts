import { Command } from "commander";
import { refusalSaying } from "../../src/errors.ts";
import { changesBetween, changesJson, type ChangeCounts } from "../../src/history/index.ts";
import {
  addCommonOptions,
  addFilterOptions,
  filtersFrom,
  type CommonFlags,
  type FilterFlags,
} from "../options.ts";
import { addWindowOptions, scopeFrom, type WindowFlags } from "../history-shared.ts";
import { printJson, printLines } from "../output.ts";
import type { RunContext } from "../run.ts";

type Flags = CommonFlags & WindowFlags & FilterFlags;

function counts(c: ChangeCounts): string {
  const parts = (["created", "updated", "deleted", "recreated", "transient"] as const)
    .filter((k) => c[k] > 0)
    .map((k) => `${c[k]} ${k === "transient" ? "created and deleted" : k}`);
  return parts.join(", ") || "no change";
}

export function changesCommand(ctx: RunContext): Command {
  const cmd = new Command("changes").description(
    "what changed cluster-wide in a window: objects created, updated and deleted, by resource and namespace, with the changed paths",
  );
  addWindowOptions(cmd, true);
  addFilterOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (flags: Flags) => {
    const filters = filtersFrom(flags);
    const { storage, scope } = await scopeFrom(flags);
    const summary = await changesBetween(storage, scope, filters, ctx.signal).catch((e: unknown) => {
      throw refusalSaying(e, "no change was shown");
    });
    if (flags.output === "json") return printJson(changesJson(summary));
    const lines = [
      `cluster ${summary.cluster}, ${summary.since.toISOString()} to ${summary.until.toISOString()}: ${counts(summary.totals)}`,
    ];
    for (const g of summary.groups) {
      lines.push(
        `${g.resource}${g.namespace === undefined ? "" : ` in ${g.namespace}`}: ${counts(g.counts)}`,
      );
      for (const o of g.objects) {
        const what =
          o.change === "updated" && o.statusOnly
            ? "status only"
            : o.change === "transient"
              ? "created and deleted"
              : o.change;
        const paths = o.paths.length ? `  ${o.paths.join(", ")}` : "";
        lines.push(
          `  ${what.padEnd(11)}  ${o.name}  (${o.events} event${o.events === 1 ? "" : "s"})${paths}`,
        );
      }
    }
    for (const g of summary.gaps)
      lines.push(
        `-- not recorded from ${g.from.toISOString()} to ${g.to.toISOString()} (${g.reason}; ${g.resources.join(", ")})`,
      );
    printLines(lines);
  });
  return cmd;
}
