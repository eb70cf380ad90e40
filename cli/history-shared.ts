/**
 * What `history` and `changes` share: the window flags (`--since`, `--until`, RFC 3339 or a
 * duration before now), `--cluster`, the storage with its identities and trusted signers, and the
 * scope they open.
 */
import type { Command } from "commander";
import { openScope, parseTimeFlag, type Scope } from "../src/history/index.ts";
import type { StorageBackend } from "../src/storage/backend.ts";
import {
  addIdentityOptions,
  addStorageOptions,
  contentStorageFrom,
  type IdentityFlags,
  type StorageFlags,
} from "./options.ts";
import { addTrustOptions, type TrustFlags } from "./signing.ts";

export interface WindowFlags extends StorageFlags, IdentityFlags, TrustFlags {
  since?: string;
  until?: string;
  cluster?: string;
}

export function addWindowOptions(cmd: Command, sinceRequired = false): Command {
  const since = "from this time: RFC 3339 (2026-12-03T05:20:00Z) or a duration before now (30m, 2h, 7d)";
  if (sinceRequired) cmd.requiredOption("--since <time>", since);
  else cmd.option("--since <time>", `${since} (default: the first thing recorded)`);
  cmd
    .option("--until <time>", "up to this time, in the same forms (default: now)")
    .option(
      "--cluster <uid>",
      "whose past, when the location holds several clusters' (a unique prefix of the uid)",
    );
  addStorageOptions(cmd);
  return addTrustOptions(addIdentityOptions(cmd));
}

/** The storage and the scope the flags name (usage errors before anything but the listing is read). */
export async function scopeFrom(
  flags: WindowFlags,
  until?: Date,
): Promise<{ storage: StorageBackend; scope: Scope }> {
  const now = new Date();
  const window = {
    until: until ?? (flags.until === undefined ? now : parseTimeFlag("--until", flags.until, now)),
    ...(flags.since === undefined ? {} : { since: parseTimeFlag("--since", flags.since, now) }),
  };
  const storage = await contentStorageFrom(flags);
  return { storage, scope: await openScope(storage, window, flags.cluster, now) };
}
