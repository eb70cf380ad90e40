/**
 * What changed cluster-wide between two times, through the one journal reader (read.ts): every
 * object touched in (since, until], classified by its state at `since` against its state at
 * `until` (created, updated, deleted, recreated, or created and deleted within: transient), with
 * the number of events and the union of the paths each event changed, grouped by resource and
 * namespace. Memory: the replay's ChangeSet (a few hundred bytes per key the chain changed, bodies
 * spilled to disk) plus one small summary per object changed in the window.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ChangeSet, keyOf } from "../journal/replay/changes.ts";
import type { Chain } from "../journal/chains.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import type { Filters } from "../objects/filters.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { changedPaths, isStatusPath, MAX_PATHS } from "./classify.ts";
import { objectMember, resyncMember } from "../journal/key-index.ts";
import { chainRecords, fetchSnapshot, firstSegmentAfter } from "./read.ts";
import type { Scope, ScopeGap } from "./scope.ts";

export type ChangeKind = "created" | "updated" | "deleted" | "recreated" | "transient";

/** One object changed in the window. */
export interface ObjectChange {
  name: string;
  change: ChangeKind;
  /** An update whose every changed path is under `.status`. */
  statusOnly: boolean;
  /** Puts and deletes recorded for it in the window. */
  events: number;
  /** Paths the window's events changed (at most MAX_PATHS), sorted. */
  paths: string[];
}

export type ChangeCounts = Record<ChangeKind, number>;

/** The objects of one resource (`plural.group`) in one namespace (undefined: cluster-scoped). */
export interface ChangeGroup {
  resource: string;
  namespace?: string;
  counts: ChangeCounts;
  objects: ObjectChange[];
}

export interface ChangesSummary {
  cluster: string;
  since: Date;
  until: Date;
  totals: ChangeCounts;
  /** Sorted by resource, then namespace; objects by name. */
  groups: ChangeGroup[];
  /** Time inside the window nothing (or not every resource) was recorded. */
  gaps: ScopeGap[];
}

interface Tracked {
  resource: string;
  namespace: string | undefined;
  name: string;
  /** Existed at `since`; undefined until known (an object the base holds or not). */
  before: boolean | undefined;
  firstUid: string;
  lastUid: string;
  /** A delete was recorded in the window. */
  deleted: boolean;
  /** Exists at `until`: its last event was a put. */
  after: boolean;
  events: number;
  paths: Set<string>;
  /** The label selector matched a body it had in the window (or before it). */
  selected: boolean;
}

export const emptyCounts = (): ChangeCounts => ({
  created: 0,
  updated: 0,
  deleted: 0,
  recreated: 0,
  transient: 0,
});

/** The summary of (scope.window.since, until] for objects the filters select. */
export async function changesBetween(
  storage: StorageBackend,
  scope: Scope,
  filters: Filters,
  signal?: AbortSignal,
): Promise<ChangesSummary> {
  const since = scope.window.since!;
  const until = scope.window.until;
  const filter = new EntryFilter(filters);
  const tracked = new Map<string, Tracked>();
  const dir = await mkdtemp(path.join(os.tmpdir(), "crd-backup-changes-"));
  try {
    for (const [i, s] of scope.sources.entries()) {
      if (s.type !== "chain" || s.end <= since) continue;
      // chains overlap: each is read up to the next one's start, where the next base takes over
      const next = scope.sources[i + 1]?.start;
      await readChain(
        storage,
        s.chain,
        since,
        next && next < until ? next : until,
        filter,
        tracked,
        dir,
        signal,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return summarize(scope, tracked);
}

/**
 * One chain's part of the window, merged into `tracked`, in two passes: the window's segments
 * first (which objects changed, their events, the paths between their versions in the window, and
 * each one's first body, spilled), then the segments up to `since` for those objects alone (their
 * state at `since`: the rest of the journal is read and checked, but neither kept nor spilled),
 * then the base for the objects the journal had not touched before.
 */
async function readChain(
  storage: StorageBackend,
  chain: Chain,
  since: Date,
  until: Date,
  filter: EntryFilter,
  tracked: Map<string, Tracked>,
  dir: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const lo = since.getTime();
  const hi = until.getTime();
  const first = firstSegmentAfter(chain, since);
  // the last in-window body of each object, and the first one of those whose state at `since` is
  // not known yet (from an earlier chain it is)
  await using win = await ChangeSet.create(path.join(dir, `${chain.base}.window`));
  await using firsts = await ChangeSet.create(path.join(dir, `${chain.base}.firsts`));
  for await (const { record: r } of chainRecords(storage, chain, until, signal, { first })) {
    const t = Date.parse(r.t);
    if (t <= lo || t > hi || (r.op !== "put" && r.op !== "delete") || r.kind !== "object") continue;
    if (!filter.selectsRef({ group: r.group!, plural: r.plural!, namespace: r.namespace, name: r.name }))
      continue;
    const key = keyOf(r);
    let o = tracked.get(key);
    if (!o) {
      o = {
        resource: `${r.plural}.${r.group}`,
        namespace: r.namespace,
        name: r.name,
        before: undefined,
        firstUid: r.uid,
        lastUid: r.uid,
        deleted: false,
        after: false,
        events: 0,
        paths: new Set(),
        selected: !filter.readsLabels,
      };
      tracked.set(key, o);
    }
    const prior = win.get(key);
    if (!prior && o.before === undefined) await firsts.apply(r);
    else if (prior?.put && r.op === "put") addPaths(o, await win.body(prior), r.body);
    o.events++;
    o.lastUid = r.uid;
    o.after = r.op === "put";
    if (r.op === "delete") o.deleted = true;
    else if (!o.selected && filter.selectsLabels(r.body)) o.selected = true;
    await win.apply(r);
  }
  if (firsts.size === 0) return;

  // the state at `since` of the objects first seen in the window: their records and every re-list
  await using pre = await ChangeSet.create(path.join(dir, `${chain.base}.before`));
  // few objects (a quiet window): only the segments whose key index may hold one of them, or a
  // re-list of their resources; many: every segment would match, so none is looked up
  const wanted = firsts.size <= MAX_LOOKUPS ? members(firsts) : undefined;
  for await (const { record: r } of chainRecords(storage, chain, since, signal, { end: first + 1, wanted })) {
    if (Date.parse(r.t) > lo) continue;
    if (r.op === "resync" || ((r.op === "put" || r.op === "delete") && firsts.has(keyOf(r))))
      await pre.apply(r);
  }
  const fromBase = new Set<string>();
  for (const c of firsts.all()) {
    const o = tracked.get(c.key)!;
    const p = pre.get(c.key);
    if (!p) {
      fromBase.add(c.key);
      continue;
    }
    o.before = pre.alive(c.key);
    o.firstUid = p.uid;
    if (p.put) await settle(o, await pre.body(p), c.put ? await firsts.body(c) : undefined, filter);
  }
  if (fromBase.size === 0) return;
  await using base = await fetchSnapshot(storage, chain.base, signal);
  for await (const e of base.entries()) {
    if (e.kind !== "object") continue;
    const key = keyOf({ kind: "object", ref: e.ref });
    if (!fromBase.delete(key)) continue;
    const o = tracked.get(key)!;
    // a re-list before `since` that missed it: it was gone then
    o.before = pre.alive(key);
    if (e.record.uid) o.firstUid = e.record.uid;
    const c = firsts.get(key)!;
    await settle(o, e.body, c.put ? await firsts.body(c) : undefined, filter);
  }
  for (const key of fromBase) tracked.get(key)!.before = false;
}

/** Up to this many objects, the pass before `since` looks them up in the segments' key indexes. */
const MAX_LOOKUPS = 2000;

/** The key-index members of the objects `set` changed, and of re-lists of their resources. */
function members(set: ChangeSet): string[] {
  const out = new Set<string>();
  for (const c of set.all()) {
    const [, group, plural, namespace, name] = c.key.split("/") as [string, string, string, string, string];
    out.add(objectMember(group, plural, namespace === "" ? undefined : namespace, name));
    out.add(resyncMember(group, plural));
  }
  return [...out];
}

/** What the object's body at `since` adds: the label selector's verdict, and the paths its first window version changed. */
async function settle(
  o: Tracked,
  before: Buffer,
  first: Buffer | undefined,
  filter: EntryFilter,
): Promise<void> {
  if (!o.selected && filter.selectsLabels(before)) o.selected = true;
  if (first) addPaths(o, before, first);
}

function addPaths(o: Tracked, from: Buffer, to: Buffer): void {
  if (o.paths.size >= MAX_PATHS || from.equals(to)) return;
  for (const p of changedPaths(from, to, MAX_PATHS - o.paths.size)) o.paths.add(p);
}

function classifyChange(o: Tracked, after: boolean): ChangeKind | undefined {
  if (!o.before) return after ? "created" : "transient";
  if (!after) return "deleted";
  if (o.deleted || (o.firstUid !== "" && o.lastUid !== "" && o.firstUid !== o.lastUid)) return "recreated";
  return o.paths.size > 0 ? "updated" : undefined; // puts that changed nothing stored
}

function summarize(scope: Scope, tracked: Map<string, Tracked>): ChangesSummary {
  const totals = emptyCounts();
  const groups = new Map<string, ChangeGroup>();
  for (const o of tracked.values()) {
    if (!o.selected) continue;
    // after: the last event's outcome (a re-list's implied deletes are not events here)
    const change = classifyChange(o, o.after);
    if (!change) continue;
    const id = `${o.resource}\u0000${o.namespace ?? ""}`;
    let g = groups.get(id);
    if (!g) {
      g = { resource: o.resource, counts: emptyCounts(), objects: [] };
      if (o.namespace !== undefined) g.namespace = o.namespace;
      groups.set(id, g);
    }
    const paths = [...o.paths].sort();
    g.counts[change]++;
    totals[change]++;
    g.objects.push({
      name: o.name,
      change,
      statusOnly: change === "updated" && paths.every(isStatusPath),
      events: o.events,
      paths,
    });
  }
  const sorted = [...groups.values()].sort((a, b) =>
    a.resource !== b.resource
      ? a.resource < b.resource
        ? -1
        : 1
      : (a.namespace ?? "") < (b.namespace ?? "")
        ? -1
        : 1,
  );
  for (const g of sorted) g.objects.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const { since, until } = scope.window;
  return { cluster: scope.cluster, since: since!, until, totals, groups: sorted, gaps: scope.gaps };
}
