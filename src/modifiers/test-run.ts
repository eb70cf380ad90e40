/**
 * `crd-backup modifiers test`: the rules applied to every selected object of a verified snapshot,
 * with no cluster: what restore --dry-run would report about them, minus the server's checks.
 */
import type { FieldChange } from "../json/diff.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import type { Filters } from "../objects/filters.ts";
import type { VerifiedSnapshot } from "../source/verified.ts";
import { EntryModifiers } from "./entries.ts";
import type { ModifierSet } from "./types.ts";

export interface ModifierTestEntry {
  resource: string;
  namespace?: string;
  name: string;
  outcome: "patched" | "dropped" | "failed";
  rules: number[];
  /** Changed paths against the stored object, never values. */
  diff: FieldChange[];
  reason?: string;
}

export interface ModifierTestResult {
  snapshotId: string;
  files: string[];
  counts: { objects: number; matched: number; changed: number; dropped: number; failed: number };
  /** The objects some rule matched, in archive order. */
  entries: ModifierTestEntry[];
}

export async function testModifiers(
  snapshot: VerifiedSnapshot,
  set: ModifierSet,
  filters: Filters,
  signal?: AbortSignal,
): Promise<ModifierTestResult> {
  const modifiers = new EntryModifiers(set);
  const filter = new EntryFilter(filters);
  const counts = { objects: 0, matched: 0, changed: 0, dropped: 0, failed: 0 };
  const entries: ModifierTestEntry[] = [];
  for await (const entry of snapshot.entries()) {
    signal?.throwIfAborted();
    if (entry.kind === "crd") modifiers.noteCrd(entry.record.name, entry.body);
    if (entry.kind !== "object" || !filter.selects(entry)) continue;
    counts.objects++;
    const r = entry.ref;
    const result = modifiers.modify(r, entry.body);
    if (result.kind === "unmatched") continue;
    counts.matched++;
    const base = {
      resource: `${r.plural}.${r.group}`,
      namespace: r.namespace,
      name: r.name,
      rules: result.rules,
    };
    if (result.kind === "patched") {
      if (result.diff.length > 0) counts.changed++;
      entries.push({ ...base, outcome: "patched", diff: result.diff });
    } else if (result.kind === "dropped") {
      counts.dropped++;
      entries.push({ ...base, outcome: "dropped", diff: [] });
    } else {
      counts.failed++;
      entries.push({ ...base, outcome: "failed", diff: [], reason: result.reason });
    }
  }
  return { snapshotId: snapshot.id, files: set.files, counts, entries };
}
