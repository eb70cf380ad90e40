import { Command } from "commander";
import { CrdBackupError, refusalSaying } from "../../src/errors.ts";
import { identitiesFor } from "../../src/crypto/keyring.ts";
import { toYaml } from "../../src/export/yaml.ts";
import {
  archivedResources,
  diffOf,
  historyHeadJson,
  historyJsonText,
  objectHistory,
  objectOf,
  parseObjectArg,
  parseTimeFlag,
  objectRefer,
  resourceName,
  VERSION_WORDS,
  type HistoryItem,
  type ObjectVersion,
} from "../../src/history/index.ts";
import { addCommonOptions, type CommonFlags } from "../options.ts";
import { addWindowOptions, scopeFrom, type WindowFlags } from "../history-shared.ts";
import { printJson } from "../output.ts";
import type { RunContext } from "../run.ts";
import { favourMemory } from "../gc.ts";

type Flags = CommonFlags &
  WindowFlags & {
    namespace?: string;
    diff?: boolean;
    show?: string;
  };

function versionLine(v: ObjectVersion): string {
  const from = "snapshot" in v.source ? `snapshot ${v.source.snapshot}` : "journal";
  const paths = v.paths.length ? `  ${v.paths.join(", ")}` : "";
  return `${v.t.toISOString()}  ${VERSION_WORDS[v.what].padEnd(13)}  ${from}${v.before ? " (in effect at --since)" : ""}${paths}`;
}

function itemLines(item: HistoryItem, diff: boolean): string[] {
  if (item.type === "gap")
    return [`-- not recorded from ${item.from.toISOString()} to ${item.to.toISOString()} (${item.reason})`];
  const lines = [versionLine(item)];
  if (diff && item.previous !== undefined && item.body !== undefined) {
    const sign = { added: "+", removed: "-", changed: "~" } as const;
    for (const d of diffOf(item)) {
      const value = d.op === "added" ? d.to : d.op === "removed" ? d.from : `${d.from} -> ${d.to}`;
      lines.push(`    ${sign[d.op]} ${d.path}: ${value}`);
    }
  }
  return lines;
}

const write = (s: string) =>
  process.stdout.write(s)
    ? Promise.resolve()
    : new Promise<void>((r) => process.stdout.once("drain", () => r()));

export function historyCommand(ctx: RunContext): Command {
  const cmd = new Command("history")
    .description("list every recorded version of one object: when, what happened, which paths changed")
    .argument("<resource/name>", "the object: plural.group, plural, kind or kind.group, then /name")
    .option("-n, --namespace <namespace>", "the object's namespace (namespaced resources)")
    .option("--diff", "print the field-level changes of each version (values included)")
    .option("--show <time>", "print the object as it was at this time (YAML, or JSON with -o json)");
  addWindowOptions(cmd);
  addCommonOptions(cmd);
  cmd.action(async (arg: string, flags: Flags) => {
    favourMemory();
    const { resource: resourceArg, name } = parseObjectArg(arg);
    const show = flags.show === undefined ? undefined : parseTimeFlag("--show", flags.show);
    if (show && (flags.since !== undefined || flags.until !== undefined || flags.diff))
      throw new CrdBackupError("USAGE", "--show takes no --since, --until or --diff");
    const { storage, scope } = await scopeFrom(flags, show);
    const known = await archivedResources(scope.snapshots, identitiesFor(storage));
    const object = objectRefer(known, resourceArg, name, flags.namespace);
    const resource = object.resource;
    const items = objectHistory(storage, scope, object, ctx.signal);
    try {
      if (show) {
        let last: ObjectVersion | undefined;
        for await (const item of items) if (item.type === "version") last = item;
        const value = last && objectOf(last);
        if (!value)
          throw new CrdBackupError(
            "NOT_FOUND",
            `${resourceName(resource)} ${flags.namespace ? `${flags.namespace}/` : ""}${name} did not exist at ${show.toISOString()} (deleted at ${last!.t.toISOString()})`,
          );
        if (flags.output === "json") printJson(value);
        else await write(toYaml(value).replace(/\n?$/, "\n"));
        return;
      }
      if (flags.output === "json") {
        for await (const chunk of historyJsonText(historyHeadJson(scope, object), items)) await write(chunk);
        return;
      }
      for await (const item of items) await write(itemLines(item, Boolean(flags.diff)).join("\n") + "\n");
    } catch (e) {
      throw refusalSaying(e, "the history stops there");
    }
  });
  return cmd;
}
