import { addTrustOptions } from "../signing.ts";
import { Command, type Command as CommandType } from "commander";
import { loadModifiers } from "../../src/modifiers/parse.ts";
import type { ModifierSet } from "../../src/modifiers/types.ts";
import { testModifiers } from "../../src/modifiers/test-run.ts";
import { openSource } from "../../src/source/open.ts";
import { addAtOptions, snapshotRefFrom, type AtFlags } from "../at.ts";
import { EXIT } from "../exit-codes.ts";
import {
  addCommonOptions,
  addFilterOptions,
  addIdentityOptions,
  addStorageOptions,
  collect,
  contentStorageFrom,
  filtersFrom,
  type CommonFlags,
  type FilterFlags,
  type IdentityFlags,
  type StorageFlags,
} from "../options.ts";
import { printLines, writeReportJson } from "../output.ts";
import type { RunContext } from "../run.ts";

/** `--resource-modifiers FILE` (repeatable) for restore, drill and export. */
export function addModifierOptions(cmd: CommandType): CommandType {
  return cmd.option(
    "--resource-modifiers <file>",
    "change objects on the way: Velero's resource modifier rules, plus crd-backup's extensions (repeatable, applied in order)",
    collect,
  );
}

/** The rules of the files given, parsed before anything is read from storage: a bad file is exit 2. */
export function modifiersFrom(flags: { resourceModifiers?: string[] }): Promise<ModifierSet | undefined> {
  return loadModifiers(flags.resourceModifiers ?? []);
}

type TestFlags = CommonFlags &
  StorageFlags &
  IdentityFlags &
  AtFlags &
  FilterFlags & { resourceModifiers?: string[] };

export function modifiersCommand(ctx: RunContext): Command {
  const cmd = new Command("modifiers").description("resource modifier rules (--resource-modifiers)");
  const test = new Command("test")
    .description(
      "apply resource modifier rules to a snapshot without a cluster: per object, the rules that matched and the changed paths",
    )
    .argument("<file>", "the rules file")
    .argument("[snapshot]", 'a snapshot id, or "latest" (or --at instead)');
  addAtOptions(test);
  addStorageOptions(test);
  addIdentityOptions(test);
  addTrustOptions(test);
  addFilterOptions(test);
  addCommonOptions(test);
  addModifierOptions(test);
  test.action(async (file: string, arg: string | undefined, flags: TestFlags) => {
    const set = (await loadModifiers([file, ...(flags.resourceModifiers ?? [])]))!;
    const ref = snapshotRefFrom(arg, flags);
    const filters = filtersFrom(flags);
    const storage = await contentStorageFrom(flags);
    await using snapshot = await openSource(storage, ref, ctx.signal);
    const result = await testModifiers(snapshot, set, filters, ctx.signal);
    if (flags.output === "json") {
      const { entries, ...head } = result;
      await writeReportJson(process.stdout, head, entries);
    } else {
      const c = result.counts;
      printLines([
        `resource modifiers on snapshot ${result.snapshotId}: ${c.objects} objects, ${c.matched} matched, ${c.changed} changed, ${c.dropped} dropped, ${c.failed} failed`,
        ...result.entries.map((e) => {
          const where = e.namespace ? `${e.namespace}/${e.name}` : e.name;
          const what =
            e.outcome === "dropped"
              ? "dropped"
              : e.outcome === "failed"
                ? `FAILED: ${e.reason}`
                : e.diff.map((d) => `${d.op} ${d.path}`).join(", ") || "no change";
          return `  ${e.resource} ${where}: rules ${e.rules.join(", ")}: ${what}`;
        }),
      ]);
    }
    ctx.exitCode = result.counts.failed > 0 ? EXIT.PARTIAL : EXIT.OK;
  });
  cmd.addCommand(test.exitOverride());
  return cmd;
}
