import { addTrustOptions } from "../signing.ts";
import { Command } from "commander";
import { diffSnapshot } from "../../src/diff/snapshot-diff.ts";
import { CrdBackupError } from "../../src/errors.ts";
import { EXIT } from "../exit-codes.ts";
import {
  addCommonOptions,
  addFilterOptions,
  addKubeOptions,
  addStorageOptions,
  filtersFrom,
  kubeClientFrom,
  positiveInt,
  type CommonFlags,
  type FilterFlags,
  type KubeFlags,
  type StorageFlags,
  addIdentityOptions,
  contentStorageFrom,
} from "../options.ts";
import { addAtOptions, snapshotRefFrom, type AtFlags } from "../at.ts";
import { printJson, printLines } from "../output.ts";
import type { RunContext } from "../run.ts";
import { addNameOption } from "../by-name.ts";

type Flags = CommonFlags &
  KubeFlags &
  StorageFlags &
  AtFlags &
  FilterFlags & { status?: boolean; maxDetails: number };

export function diffCommand(ctx: RunContext): Command {
  const cmd = new Command("diff")
    .description(
      "compare a snapshot with the live cluster, or with another snapshot (exit 4 when they differ)",
    )
    .argument("[snapshot]", 'a snapshot id, or "latest" (with --at: leave it out)')
    .argument("[other]", "another snapshot to compare with, instead of the live cluster");
  addAtOptions(cmd);
  addKubeOptions(cmd);
  addStorageOptions(cmd);
  addIdentityOptions(cmd);
  addTrustOptions(cmd);
  addFilterOptions(cmd);
  addNameOption(cmd);
  addCommonOptions(cmd);
  cmd
    .option("--status", "compare status too")
    .option(
      "--max-details <n>",
      "field-level diffs for at most this many changed objects",
      positiveInt("--max-details"),
      100,
    )
    .action(async (first: string | undefined, second: string | undefined, flags: Flags) => {
      // with --at the point in time takes the first place: `diff --at T [other]`
      if (flags.at !== undefined && second !== undefined)
        throw new CrdBackupError("USAGE", "with --at, name at most one snapshot to compare with");
      const ref = snapshotRefFrom(flags.at === undefined ? first : undefined, flags);
      const other = flags.at === undefined ? second : first;
      const options = {
        filters: filtersFrom(flags),
        withStatus: Boolean(flags.status),
        maxDetails: flags.maxDetails,
        signal: ctx.signal,
      };
      const storage = await contentStorageFrom(flags);
      const client = other === undefined ? await kubeClientFrom(flags, 8) : undefined;
      try {
        const result = await diffSnapshot(storage, ref, client ? { client } : { snapshot: other! }, options);
        if (flags.output === "json") printJson(result);
        else {
          const lines = [
            `snapshot ${result.snapshotId} vs ${result.against}: ${result.identical ? "identical" : "different"}`,
          ];
          for (const r of result.resources) {
            const n = r.onlyInSnapshot.length + r.onlyInOther.length + r.changed.length;
            if (n === 0) continue;
            lines.push(
              `${r.resource}: ${r.onlyInSnapshot.length} only in the snapshot, ${r.onlyInOther.length} only in ${result.against === "live" ? "the cluster" : result.against}, ${r.changed.length} changed`,
            );
            for (const k of r.onlyInSnapshot) lines.push(`  - ${k}`);
            for (const k of r.onlyInOther) lines.push(`  + ${k}`);
            for (const c of r.changed)
              lines.push(
                `  ~ ${c.object}${c.diff ? `: ${c.diff.map((d) => `${d.op} ${d.path}`).join(", ")}` : ""}`,
              );
          }
          printLines(lines);
        }
        ctx.exitCode = result.identical ? EXIT.OK : EXIT.DIFFERENT;
      } finally {
        client?.close();
      }
    });
  return cmd;
}
