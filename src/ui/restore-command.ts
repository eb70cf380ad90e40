/**
 * The exact command that restores one object as the page shows it, with --dry-run so that
 * pasting it changes nothing: `crd-backup restore <id> | --at T --cluster UID`, the storage
 * flags the web view itself was started with, the resource, its namespace and its name.
 */
import type { BrowseRef } from "./browse-cache.ts";
import { resourceKey, type ObjectKey } from "./browse-index.ts";

/** How the web view was pointed at its storage, as flags a command line can repeat (never credentials). */
export interface CommandContext {
  /** e.g. ["--storage", "s3://bucket/prefix", "--s3-endpoint", "http://…"]. */
  storageArgs: string[];
  /** The --identity files the view was given, for encrypted snapshots. */
  identityFiles: string[];
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One shell word: as it is when it cannot be misread, single-quoted otherwise. */
export function shellWord(s: string): string {
  return SAFE.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

export function restoreCommand(
  ctx: CommandContext,
  ref: BrowseRef,
  key: ObjectKey,
  encrypted: boolean,
): string {
  const words = ["crd-backup", "restore"];
  if ("snapshot" in ref) words.push(ref.snapshot);
  else words.push("--at", ref.at.toISOString(), "--cluster", ref.cluster);
  words.push(...ctx.storageArgs);
  if (encrypted) {
    if (ctx.identityFiles.length === 0) words.push("--identity", "<your-identity-file>");
    for (const f of ctx.identityFiles) words.push("--identity", f);
  }
  words.push("--include-resources", resourceKey(key.group, key.plural));
  if (key.namespace !== "") words.push("--include-namespaces", key.namespace);
  words.push("--name", key.name, "--dry-run");
  return words.map((w) => (w === "<your-identity-file>" ? w : shellWord(w))).join(" ");
}

/**
 * One object as it was at a time the journal recorded, in restore's short form:
 * `crd-backup restore <resource>/<name> -n NS --at T --cluster UID … --dry-run` (`--at` takes
 * every record up to and including T, so T is the version's own time).
 */
export function restoreAtCommand(ctx: CommandContext, cluster: string, at: Date, key: ObjectKey): string {
  const words = ["crd-backup", "restore", `${resourceKey(key.group, key.plural)}/${key.name}`];
  if (key.namespace !== "") words.push("-n", key.namespace);
  words.push("--at", at.toISOString(), "--cluster", cluster, ...ctx.storageArgs);
  // the view read the journal with these: a restore of it needs them too
  for (const f of ctx.identityFiles) words.push("--identity", f);
  words.push("--dry-run");
  return words.map(shellWord).join(" ");
}
