/**
 * Picking objects by name: `--name GLOB` on restore, export, diff and drill (the filters carry it
 * to the one archive-entry filter), and the short form `restore <resource>/<name> -n NS --at T`,
 * "put this one object back as it was": it only narrows the filters (the resource, the namespace,
 * the exact name) and goes through the one restore path (plan, dry-run, conflicts, report); a plan
 * without the object is refused before anything is written.
 */
import { identitiesFor } from "../src/crypto/keyring.ts";
import { CrdBackupError } from "../src/errors.ts";
import { archivedResources, parseObjectArg, resolveResource, resourceName } from "../src/history/index.ts";
import type { Filters } from "../src/objects/filters.ts";
import type { StorageBackend } from "../src/storage/backend.ts";
import { listSnapshots } from "../src/storage/snapshots.ts";
import type { Command } from "commander";
import type { AtFlags } from "./at.ts";
import { collect, filtersFrom, type FilterFlags } from "./options.ts";

/** `--name GLOB` (repeatable): pick objects by name, through the one archive-entry filter. */
export function addNameOption(cmd: Command): Command {
  return cmd.option(
    "--name <glob>",
    "only objects with this name (a glob: * any run, ? one character; repeatable, or comma-separated)",
    collect,
  );
}

export interface OneObjectFlags extends AtFlags, FilterFlags {
  namespace?: string;
}

/** The object the argument names, when it is `<resource>/<name>` (a snapshot id never holds "/"). */
export function oneObjectFrom(
  arg: string | undefined,
  flags: OneObjectFlags,
): { resource: string; name: string } | undefined {
  if (arg === undefined || !arg.includes("/")) {
    if (flags.namespace !== undefined)
      throw new CrdBackupError(
        "USAGE",
        "-n goes with the short form: restore <resource>/<name> -n NS --at T",
      );
    return undefined;
  }
  const one = parseObjectArg(arg);
  if (flags.at === undefined)
    throw new CrdBackupError("USAGE", `restore ${arg}: say when, with --at <time> (or --at now)`);
  if (flags.name !== undefined)
    throw new CrdBackupError("USAGE", `restore ${arg} names its object: leave out --name`);
  return one;
}

/** The filters that pick the one object, and the error for a state at T without it. */
export async function pickOne(
  storage: StorageBackend,
  one: { resource: string; name: string },
  flags: OneObjectFlags,
): Promise<{ filters: Filters; missing: (at: string) => CrdBackupError }> {
  const known = await archivedResources(
    await listSnapshots(storage, () => undefined),
    identitiesFor(storage),
  );
  const resource = resolveResource(known, one.resource);
  const name = resourceName(resource);
  if (resource.namespaced && flags.namespace === undefined)
    throw new CrdBackupError("USAGE", `${name} is namespaced: give -n <namespace>`);
  if (!resource.namespaced && flags.namespace !== undefined)
    throw new CrdBackupError("USAGE", `${name} is cluster-scoped: leave out -n`);
  const filters: Filters = {
    ...filtersFrom(flags),
    includeResources: [name],
    includeNamespaces: flags.namespace === undefined ? [] : [flags.namespace],
    // names hold no glob characters (Kubernetes allows none), so the glob is the exact name
    names: [one.name],
  };
  const what = `${name} ${flags.namespace ? `${flags.namespace}/` : ""}${one.name}`;
  return {
    filters,
    missing: (at) =>
      new CrdBackupError("NOT_FOUND", `${what} is not in the state ${at}: nothing was restored`, {
        name: one.name,
      }),
  };
}
