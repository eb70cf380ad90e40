import { Command } from "commander";
import { refusalSaying } from "../../src/errors.ts";
import {
  changesBetween,
  changesJsonText,
  changeWord,
  countsText,
  type ChangesSummary,
} from "../../src/history/index.ts";
import {
  addCommonOptions,
  addFilterOptions,
  filtersFrom,
  type CommonFlags,
  type FilterFlags,
} from "../options.ts";
import { addWindowOptions, scopeFrom, type WindowFlags } from "../history-shared.ts";
import type { RunContext } from "../run.ts";
import { favourMemory } from "../gc.ts";

type Flags = CommonFlags & WindowFlags & FilterFlags;

function* changesText(summary: ChangesSummary): Generator<string> {
  yield `cluster ${summary.cluster}, ${summary.since.toISOString()} to ${summary.until.toISOString()}: ${countsText(summary.totals)}\n`;
  for (const g of summary.groups) {
    const lines = [
      `${g.resource}${g.namespace === undefined ? "" : ` in ${g.namespace}`}: ${countsText(g.counts)}`,
    ];
    for (const o of g.objects) {
      const what = changeWord(o);
      const paths = o.paths.length ? `  ${o.paths.join(", ")}` : "";
      lines.push(`  ${what.padEnd(11)}  ${o.name}  (${o.events} event${o.events === 1 ? "" : "s"})${paths}`);
    }
    yield lines.join("\n") + "\n";
  }
  for (const g of summary.gaps)
    yield `-- not recorded from ${g.from.toISOString()} to ${g.to.toISOString()} (${g.reason}; ${g.resources.join(", ")})\n`;
}

export function changesCommand(ctx: RunContext): Command {
  const cmd = new Command("changes").description(
    "what changed cluster-wide in a window: objects created, updated and deleted, by resource and namespace, with the changed paths",
  );
  addWindowOptions(cmd, true);
  addFilterOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (flags: Flags) => {
    favourMemory();
    const filters = filtersFrom(flags);
    const { storage, scope } = await scopeFrom(flags);
    const summary = await changesBetween(storage, scope, filters, ctx.signal).catch((e: unknown) => {
      throw refusalSaying(e, "no change was shown");
    });
    // a group at a time: a busy hour is tens of thousands of lines, never one string
    const chunks = flags.output === "json" ? changesJsonText(summary) : changesText(summary);
    for (const chunk of chunks)
      if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once("drain", r));
  });
  return cmd;
}
