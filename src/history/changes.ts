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
import { chainRecords, firstSegmentAfter, streamSnapshot } from "./read.ts";
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

/** Kept per object changed in the window (its resource, namespace and name are in its key). */
interface Tracked {
  /** Existed at `since`; undefined until known (an object the base holds or not). */
  before: boolean | undefined;
  firstUid: string;
  lastUid: string;
  /** A delete was recorded in the window. */
  deleted: boolean;
  /** Exists at `until`: its last event was a put. */
  after: boolean;
  events: number;
  /** Distinct, one string per path across objects (Run.paths); an array: a Set per object was 300 bytes. */
  paths: string[];
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
  const dir = await mkdtemp(path.join(os.tmpdir(), "crd-backup-changes-"));
  const run: Run = { filter: new EntryFilter(filters), tracked: new Map(), paths: new Map(), dir, signal };
  try {
    for (const [i, s] of scope.sources.entries()) {
      if (s.type !== "chain" || s.end <= since) continue;
      // chains overlap: each is read up to the next one's start, where the next base takes over
      const next = scope.sources[i + 1]?.start;
      await readChain(storage, s.chain, since, next && next < until ? next : until, run);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return summarize(scope, run.tracked);
}

/** What one `changes` keeps across chains. */
interface Run {
  filter: EntryFilter;
  tracked: Map<string, Tracked>;
  /** Each changed path once: the same few paths recur in most objects. */
  paths: Map<string, string>;
  dir: string;
  signal: AbortSignal | undefined;
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
  run: Run,
): Promise<void> {
  const { filter, tracked, dir, signal } = run;
  const lo = since.getTime();
  const hi = until.getTime();
  const first = firstSegmentAfter(chain, since);
  // the last in-window body of each object, and the first one of those whose state at `since` is
  // not known yet (from an earlier chain it is)
  await using win = await ChangeSet.create(path.join(dir, `${chain.base}.window`));
  await using firsts = await ChangeSet.create(path.join(dir, `${chain.base}.firsts`));
  // bodies are spilled (copied) or compared at once, never kept: they may share the read buffers
  for await (const { record: r } of chainRecords(storage, chain, until, signal, {
    first,
    shareBodies: true,
  })) {
    const t = Date.parse(r.t);
    if (t <= lo || t > hi || (r.op !== "put" && r.op !== "delete") || r.kind !== "object") continue;
    if (!filter.selectsRef({ group: r.group!, plural: r.plural!, namespace: r.namespace, name: r.name }))
      continue;
    // one string for the key in every map below
    const key = keyOf(r);
    let o = tracked.get(key);
    if (!o) {
      o = {
        before: undefined,
        firstUid: r.uid,
        lastUid: r.uid,
        deleted: false,
        after: false,
        events: 0,
        paths: [],
        selected: !filter.readsLabels,
      };
      tracked.set(key, o);
    }
    const prior = win.get(key);
    if (!prior && o.before === undefined) await firsts.apply(r, key);
    else if (prior?.put && r.op === "put") addPaths(run, o, await win.body(prior), r.body);
    o.events++;
    o.lastUid = r.uid;
    o.after = r.op === "put";
    if (r.op === "delete") o.deleted = true;
    else if (!o.selected && filter.selectsLabels(r.body)) o.selected = true;
    await win.apply(r, key);
  }
  if (firsts.size === 0) return;

  // the state at `since` of the objects first seen in the window: their records and every re-list
  await using pre = await ChangeSet.create(path.join(dir, `${chain.base}.before`));
  // few objects (a quiet window): only the segments whose key index may hold one of them, or a
  // re-list of their resources; many: every segment would match, so none is looked up
  const wanted = firsts.size <= MAX_LOOKUPS ? members(firsts) : undefined;
  const options = { end: first + 1, wanted, shareBodies: true };
  // the names first: most records are of other objects, and a name is looked up without building a key
  const names = new Set<string>();
  for (const c of firsts.all()) names.add(c.key.slice(c.key.lastIndexOf("/") + 1));
  for await (const { record: r } of chainRecords(storage, chain, since, signal, options)) {
    if (r.op === "resync") {
      if (Date.parse(r.t) <= lo) await pre.apply(r);
    } else if ((r.op === "put" || r.op === "delete") && names.has(r.name)) {
      const key = keyOf(r);
      if (firsts.has(key) && Date.parse(r.t) <= lo) await pre.apply(r, key);
    }
  }
  // the two bodies settle compares, read into the same buffers each time (parsed at once, never
  // kept): a new Buffer for each was 40 MB of garbage in the last seconds of a run
  const scratch = [Buffer.allocUnsafe(SCRATCH_BYTES), Buffer.allocUnsafe(SCRATCH_BYTES)] as const;
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
    if (p.put)
      await settle(
        run,
        o,
        await pre.body(p, scratch[0]),
        c.put ? await firsts.body(c, scratch[1]) : undefined,
      );
  }
  if (fromBase.size === 0) return;
  // read once and to the end (every entry is checked; nothing is printed before it ends)
  for await (const e of streamSnapshot(storage, chain.base, signal)) {
    if (e.kind !== "object") continue;
    const key = keyOf({ kind: "object", ref: e.ref });
    if (!fromBase.delete(key)) continue;
    const o = tracked.get(key)!;
    // a re-list before `since` that missed it: it was gone then
    o.before = pre.alive(key);
    if (e.record.uid) o.firstUid = e.record.uid;
    const c = firsts.get(key)!;
    await settle(run, o, e.body, c.put ? await firsts.body(c, scratch[1]) : undefined);
  }
  for (const key of fromBase) tracked.get(key)!.before = false;
}

/** Bodies up to this size are read into reused buffers (larger ones into their own). */
const SCRATCH_BYTES = 256 * 1024;

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
async function settle(run: Run, o: Tracked, before: Buffer, first: Buffer | undefined): Promise<void> {
  if (!o.selected && run.filter.selectsLabels(before)) o.selected = true;
  if (first) addPaths(run, o, before, first);
}

function addPaths(run: Run, o: Tracked, from: Buffer, to: Buffer): void {
  if (o.paths.length >= MAX_PATHS || from.equals(to)) return;
  for (const p of changedPaths(from, to, MAX_PATHS - o.paths.length)) {
    let known = run.paths.get(p);
    if (known === undefined) run.paths.set(p, (known = p));
    if (!o.paths.includes(known)) o.paths.push(known);
  }
}

function classifyChange(o: Tracked, after: boolean): ChangeKind | undefined {
  if (!o.before) return after ? "created" : "transient";
  if (!after) return "deleted";
  if (o.deleted || (o.firstUid !== "" && o.lastUid !== "" && o.firstUid !== o.lastUid)) return "recreated";
  return o.paths.length > 0 ? "updated" : undefined; // puts that changed nothing stored
}

function summarize(scope: Scope, tracked: Map<string, Tracked>): ChangesSummary {
  const totals = emptyCounts();
  const groups = new Map<string, ChangeGroup>();
  for (const [key, o] of tracked) {
    if (!o.selected) continue;
    // after: the last event's outcome (a re-list's implied deletes are not events here)
    const change = classifyChange(o, o.after);
    if (!change) continue;
    // the key is o/group/plural/namespace/name (journal/replay/changes.ts keyOf): its group is the prefix
    const cut = key.lastIndexOf("/");
    const id = key.slice(0, cut);
    let g = groups.get(id);
    if (!g) {
      const [, group, plural, namespace] = id.split("/") as [string, string, string, string];
      g = { resource: `${plural}.${group}`, counts: emptyCounts(), objects: [] };
      if (namespace !== "") g.namespace = namespace;
      groups.set(id, g);
    }
    const paths = o.paths.sort();
    g.counts[change]++;
    totals[change]++;
    g.objects.push({
      name: key.slice(cut + 1),
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
