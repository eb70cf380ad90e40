/**
 * `--at <time | now>` (and `--cluster`): a point in time instead of a snapshot argument, for
 * restore, diff, export and drill. Exactly one of the two says what to read.
 */
import type { Command } from "commander";
import { CrdBackupError } from "../src/errors.ts";
import { parseAt } from "../src/journal/replay/plan.ts";
import type { SnapshotRef } from "../src/source/open.ts";

export interface AtFlags {
  at?: string;
  cluster?: string;
}

export function addAtOptions(cmd: Command): Command {
  return cmd
    .option(
      "--at <time>",
      'instead of a snapshot: the state at this RFC 3339 time, or "now" (the end of the newest recorded window), rebuilt from a base snapshot and the journal',
    )
    .option(
      "--cluster <uid>",
      "with --at: whose journal, when the location holds several clusters' (a unique prefix of the uid)",
    );
}

/** The snapshot argument or the point in time; a usage error when both or neither are given. */
export function snapshotRefFrom(ref: string | undefined, flags: AtFlags): SnapshotRef {
  if (flags.at === undefined) {
    if (flags.cluster !== undefined) throw new CrdBackupError("USAGE", "--cluster goes with --at");
    if (ref === undefined)
      throw new CrdBackupError(
        "USAGE",
        'name a snapshot (an id, "latest" or "latest@<cluster uid>") or give --at <time>',
      );
    return ref;
  }
  if (ref !== undefined)
    throw new CrdBackupError("USAGE", `give a snapshot (${JSON.stringify(ref)}) or --at, not both`);
  const at = parseAt(flags.at);
  return flags.cluster === undefined ? { at } : { at, cluster: flags.cluster };
}

/** How a reference reads in messages and reports. */
export function describeRef(ref: SnapshotRef): string {
  if (typeof ref === "string") return ref;
  const at = ref.at === "now" ? "now" : ref.at.toISOString();
  return `at ${at}${ref.cluster ? ` of cluster ${ref.cluster}` : ""}`;
}
