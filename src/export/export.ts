/**
 * `crd-backup export`: a snapshot as a tree of plain manifests (layout.ts), for review and GitOps.
 *
 * The snapshot is downloaded and verified in full before anything is written. The tree is then
 * written, one entry at a time (memory holds one object), into a staging directory next to the
 * target, `.<name>.crd-backup-<random>`, and renamed into place only when every file is written:
 * on any failure or interruption the staging directory is removed and the target is untouched. A
 * target that exists and is not empty is refused unless `force`, which replaces it as a whole
 * (so manifests of objects deleted since the last export go too), but never a directory holding
 * `.git`: the root of a checkout is not an export directory.
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { CrdBackupError } from "../errors.ts";
import { stringifyJson } from "../json/json.ts";
import { EntryModifiers } from "../modifiers/entries.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import type { Filters } from "../objects/filters.ts";
import type { ModifierSet } from "../modifiers/types.ts";
import { silentLogger, type Logger } from "../report/log.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import { openSource, type SnapshotRef } from "../source/open.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { exportPath, type ExportFormat, type ExportItem } from "./layout.ts";
import { renderManifest } from "./manifest.ts";

export interface ExportOptions {
  format: ExportFormat;
  /** Leave out status and what else would stop `kubectl apply` (manifest.ts, cleanForApply). */
  cleanForApply: boolean;
  /** Replace a target directory that is not empty. */
  force: boolean;
  signal?: AbortSignal;
  log?: Logger;
  /** Resource modifier rules: objects are exported patched, dropped ones not at all. */
  modifiers?: ModifierSet;
  /** Which objects to export (`--name`); CRDs and Namespaces are exported whole. Absent: all. */
  filters?: Filters;
}

/** What resource modifiers did in an export; an object a rule failed on is not written. */
export interface ExportModifiers {
  matched: number;
  dropped: number;
  failed: { resource: string; namespace?: string; name: string; reason: string }[];
}

export interface ExportResult {
  snapshotId: string;
  /** The snapshot's own status: a partial snapshot exports what it holds. */
  status: "complete" | "partial";
  /** The target directory, absolute. */
  to: string;
  format: ExportFormat;
  cleanForApply: boolean;
  /** Files written, by kind. */
  counts: { crds: number; namespaces: number; objects: number };
  modifiers?: ExportModifiers;
}

const usage = (message: string, to: string) => new CrdBackupError("USAGE", message, { to });

/** What is at the target now: nothing, an empty directory, or a directory with entries. */
async function inspectTarget(target: string): Promise<"absent" | "empty" | "full"> {
  let stat;
  try {
    stat = await lstat(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw e;
  }
  if (!stat.isDirectory()) throw usage(`--to ${target}: exists and is not a directory`, target);
  const entries = await readdir(target);
  if (entries.length === 0) return "empty";
  if (entries.includes(".git")) {
    throw usage(
      `--to ${target}: holds .git; export into a directory of its own, not a checkout's root`,
      target,
    );
  }
  return "full";
}

async function checkTarget(target: string, force: boolean): Promise<void> {
  if (path.dirname(target) === target)
    throw usage(`--to ${target}: cannot replace the root directory`, target);
  if ((await inspectTarget(target)) === "full" && !force) {
    throw usage(`--to ${target}: is not empty; use --force to replace it`, target);
  }
}

/** A fresh sibling of `target` (same file system, so the final rename is atomic). */
async function siblingDir(target: string, tag: string): Promise<string> {
  const dir = path.join(
    path.dirname(target),
    `.${path.basename(target)}.crd-backup-${tag}-${randomBytes(4).toString("hex")}`,
  );
  await mkdir(dir); // fails if it exists: never someone else's directory
  return dir;
}

/** Rename the finished tree onto `target`; the old target, when replaced, is removed last. */
async function moveIntoPlace(staging: string, target: string, force: boolean, log: Logger): Promise<void> {
  const state = await inspectTarget(target);
  if (state !== "full") {
    // rename(2) replaces an absent or empty directory, and fails if one appeared with entries
    await rename(staging, target).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOTEMPTY" || e.code === "EEXIST") {
        throw usage(`--to ${target}: became non-empty during the export; nothing was written to it`, target);
      }
      throw e;
    });
    return;
  }
  if (!force)
    throw usage(`--to ${target}: became non-empty during the export; nothing was written to it`, target);
  const old = path.join(
    path.dirname(target),
    `.${path.basename(target)}.crd-backup-old-${randomBytes(4).toString("hex")}`,
  );
  await rename(target, old);
  try {
    await rename(staging, target);
  } catch (e) {
    await rename(old, target);
    throw e;
  }
  // the export is in place; a leftover of the old tree is worth a warning, not a failure
  await rm(old, { recursive: true, force: true }).catch((e: unknown) => {
    log.warn("could not remove the replaced directory", { path: old, reason: (e as Error).message });
  });
}

async function writeTree(
  snapshot: VerifiedSnapshot,
  root: string,
  options: ExportOptions,
  report: ExportModifiers,
): Promise<ExportResult["counts"]> {
  const counts = { crds: 0, namespaces: 0, objects: 0 };
  const made = new Set<string>(); // directories created so far: one per resource and namespace
  const modifiers = options.modifiers ? new EntryModifiers(options.modifiers) : undefined;
  const filter = options.filters ? new EntryFilter(options.filters) : undefined;
  for await (const entry of snapshot.entries()) {
    options.signal?.throwIfAborted();
    if (entry.kind === "object" && filter && !filter.selects(entry)) continue;
    let body = entry.kind === "index" ? undefined : entry.body;
    if (entry.kind === "crd") modifiers?.noteCrd(entry.record.name, entry.body);
    if (entry.kind === "object" && modifiers) {
      const result = modifiers.modify(entry.ref, entry.body);
      if (result.kind !== "unmatched") report.matched++;
      if (result.kind === "dropped") {
        report.dropped++;
        continue;
      }
      if (result.kind === "failed") {
        const { plural, group, namespace, name } = entry.ref;
        report.failed.push({ resource: `${plural}.${group}`, namespace, name, reason: result.reason });
        continue;
      }
      if (result.kind === "patched") body = Buffer.from(stringifyJson(result.object));
    }
    let item: ExportItem;
    if (entry.kind === "object") item = { kind: "object", ref: entry.ref };
    else if (entry.kind === "crd" || entry.kind === "namespace")
      item = { kind: entry.kind, name: entry.record.name };
    else continue;
    const relative = exportPath(item, options.format);
    const file = path.join(root, ...relative.split("/"));
    // exportPath checked every component; this is the belt to those braces
    const inside = path.relative(root, file);
    if (inside.startsWith("..") || path.isAbsolute(inside)) {
      throw new CrdBackupError(
        "ARCHIVE_INVALID",
        `archive entry ${entry.name}: would be written outside --to`,
      );
    }
    const dir = path.dirname(file);
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true });
      made.add(dir);
    }
    const text = renderManifest(entry.kind, entry.name, body!, options);
    // exclusive create: two entries that map to one file are refused, never silently merged
    await writeFile(file, text, { flag: "wx" }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "EEXIST") {
        throw new CrdBackupError(
          "ARCHIVE_INVALID",
          `archive entry ${entry.name}: ${relative} was already written by another entry`,
        );
      }
      throw e;
    });
    counts[item.kind === "crd" ? "crds" : item.kind === "namespace" ? "namespaces" : "objects"] += 1;
  }
  return counts;
}

async function fetchVerified(
  storage: StorageBackend,
  ref: SnapshotRef,
  signal?: AbortSignal,
): Promise<VerifiedSnapshot> {
  try {
    return await openSource(storage, ref, signal);
  } catch (e) {
    // refused while opening (a damaged archive or segment, a forged manifest): before any write
    if (e instanceof CrdBackupError && e.code === "ARCHIVE_INVALID") {
      throw new CrdBackupError("ARCHIVE_INVALID", `${e.message}; nothing was exported`, e.context, {
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * Export snapshot `ref` to the directory `to`. Usage errors (a non-empty target without `force`)
 * come before the download; ARCHIVE_INVALID before anything is written.
 */
export async function exportSnapshot(
  storage: StorageBackend,
  ref: SnapshotRef,
  to: string,
  options: ExportOptions,
): Promise<ExportResult> {
  const log = options.log ?? silentLogger;
  const target = path.resolve(to);
  await checkTarget(target, options.force);
  await using snapshot = await fetchVerified(storage, ref, options.signal);
  log.info("snapshot verified", { id: snapshot.id, objects: snapshot.manifest.counts.objects });

  await mkdir(path.dirname(target), { recursive: true });
  const staging = await siblingDir(target, "tmp");
  try {
    const modifiers: ExportModifiers = { matched: 0, dropped: 0, failed: [] };
    const counts = await writeTree(snapshot, staging, options, modifiers);
    await moveIntoPlace(staging, target, options.force, log);
    log.info("snapshot exported", { id: snapshot.id, to: target, ...counts });
    return {
      snapshotId: snapshot.id,
      status: snapshot.manifest.status,
      to: target,
      format: options.format,
      cleanForApply: options.cleanForApply,
      counts,
      ...(options.modifiers ? { modifiers } : {}),
    };
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}
