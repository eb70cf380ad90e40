/**
 * One object's recorded versions over a window, read through the one journal reader (read.ts): a
 * chain's base, then its segments; a lone snapshot where no journal covers the time. Versions are
 * yielded as they are read, with the gaps that concern the object's resource between them, so
 * memory holds the object's current and previous bodies, never the journal.
 */
import { CrdBackupError } from "../errors.ts";
import { parseJson, type JsonObject } from "../json/json.ts";
import type { StorageBackend } from "../storage/backend.ts";
import {
  classify,
  fieldDiff,
  type FieldDiff,
  type ObjectState,
  type Observation,
  type VersionKind,
} from "./classify.ts";
import { objectMember, resyncMember } from "../journal/key-index.ts";
import type { RecordIndexes } from "../journal/record-index.ts";
import { chainRecords, fetchSnapshot } from "./read.ts";
import { resolveResource, resourceName, type ResourceInfo } from "./resource.ts";
import { gapCovers, type Scope, type ScopeGap, type Source } from "./scope.ts";

/** The object history is asked of: a resolved resource, its namespace (namespaced only) and name. */
export interface ObjectRefer {
  resource: ResourceInfo;
  namespace?: string;
  name: string;
}

/**
 * The object `<resource>/<name>` names among the archived resources, with its namespace given
 * exactly when the resource is namespaced (`-n`, as `history` takes it).
 */
export function objectRefer(
  known: ResourceInfo[],
  resourceArg: string,
  name: string,
  namespace: string | undefined,
): ObjectRefer {
  const resource = resolveResource(known, resourceArg);
  if (resource.namespaced && namespace === undefined)
    throw new CrdBackupError("USAGE", `${resourceName(resource)} is namespaced: give -n <namespace>`);
  if (!resource.namespaced && namespace !== undefined)
    throw new CrdBackupError("USAGE", `${resourceName(resource)} is cluster-scoped: leave out -n`);
  return { resource, name, ...(namespace === undefined ? {} : { namespace }) };
}

/** Where a version was read: a snapshot (a chain's base or a lone one) or a journal segment. */
export type VersionSource = { snapshot: string } | { segment: string };

/** One recorded version of the object. */
export interface ObjectVersion {
  type: "version";
  t: Date;
  what: VersionKind;
  uid: string;
  /** The resourceVersion the journal recorded (none for a snapshot's copy). */
  resourceVersion?: string;
  /** Changed paths from the version before (at most MAX_PATHS). */
  paths: string[];
  source: VersionSource;
  /** The object as it was after this version, as stored (cleaned); undefined once deleted. */
  body: Buffer | undefined;
  /** The object before this version (undefined: none, or it did not exist). */
  previous: Buffer | undefined;
  /** True for the version in effect at `since`, listed first though older. */
  before?: boolean;
}

/**
 * A snapshot's copy of the object, if it holds one. By default the snapshot is fetched and its
 * whole archive verified on every call (a CLI run reads each once); a reader that keeps verified
 * snapshots indexed (the web view's browse cache) answers from its index instead, so a warm look
 * at one object reads only the journal's segments that may hold it.
 */
export type SnapshotCopy = (
  id: string,
  object: ObjectRefer,
  signal: AbortSignal | undefined,
) => Promise<{ body: Buffer; uid: string } | undefined>;

/** Time inside the window nothing was recorded for the object's resource. */
export interface HistoryGap {
  type: "gap";
  from: Date;
  to: Date;
  reason: string;
}

export type HistoryItem = ObjectVersion | HistoryGap;

/** The object as it was after a version (undefined after a delete), parsed losslessly. */
export function objectOf(v: ObjectVersion): JsonObject | undefined {
  return v.body === undefined ? undefined : (parseJson(v.body.toString("utf8")) as JsonObject);
}

/** Field-level differences from the version before, with values (what `--diff` prints). */
export function diffOf(v: ObjectVersion): FieldDiff[] {
  return fieldDiff(v.previous, v.body, Infinity);
}

const describeObject = (o: ObjectRefer) =>
  `${resourceName(o.resource)} ${o.namespace ? `${o.namespace}/` : ""}${o.name}`;

/**
 * Every version of `object` within the scope's window, oldest first, and the gaps between them.
 * The version in effect at `since` (if the object existed then) comes first, marked `before`.
 * An object with no version at all in what was read is a NOT_FOUND error, thrown before anything
 * is yielded. `indexes`: a long-running reader's record indexes (read.ts, chainRecords).
 */
export async function* objectHistory(
  storage: StorageBackend,
  scope: Scope,
  object: ObjectRefer,
  signal?: AbortSignal,
  copyIn: SnapshotCopy = (id, o, s) => snapshotCopy(storage, id, o, s),
  indexes?: RecordIndexes,
): AsyncGenerator<HistoryItem> {
  const { since, until } = scope.window;
  const resource = resourceName(object.resource);
  const gaps = scope.gaps.filter((g) => gapCovers(g, resource));
  let state: ObjectState | undefined;
  let held: ObjectVersion | undefined; // the newest version before `since`
  let yielded = 0;
  const pendingGaps = (upTo: Date): HistoryGap[] => {
    const out: HistoryGap[] = [];
    while (gaps.length > 0 && gaps[0]!.from < upTo) out.push(gapItem(gaps.shift()!));
    return out;
  };
  /** What to yield for an observation: nothing, or the version (after the held one and gaps). */
  const observe = (o: Observation, source: VersionSource, rv?: string): HistoryItem[] => {
    if (o.t > until) return [];
    // an absence (or a delete) of an object nothing was known of leaves it unknown: a put after
    // it is a create, not a recreate
    if (state === undefined && (o.op === "delete" || o.body === undefined)) return [];
    const c = classify(state, o);
    const previous = state?.body;
    state = { t: o.t, body: o.op === "delete" ? undefined : o.body, uid: o.uid };
    if (!c) return [];
    const v: ObjectVersion = {
      type: "version",
      t: o.t,
      what: c.what,
      uid: o.uid,
      paths: c.paths,
      source,
      body: state.body,
      previous,
    };
    if (rv !== undefined) v.resourceVersion = rv;
    if (since && o.t < since) {
      held = v;
      return [];
    }
    const out: HistoryItem[] = [];
    if (held) {
      if (held.body !== undefined) out.push({ ...held, before: true });
      held = undefined;
    }
    out.push(...pendingGaps(o.t), v);
    return out;
  };

  for (const [i, source] of scope.sources.entries()) {
    // chains overlap (the old one ends after the new base finished): each is read up to the next
    // one's start, where the next base takes over
    const next = scope.sources[i + 1]?.start;
    const stop = next && next < until ? next : until;
    const read = readSource(storage, source, object, stop, observe, signal, copyIn, indexes);
    for await (const item of read) {
      if (item.type === "version") yielded++;
      yield item; // a gap is only ever yielded just before a version
    }
  }
  if (held?.body !== undefined) {
    yielded++;
    yield { ...held, before: true };
  }
  if (yielded === 0) {
    const when = `${since ? `between ${since.toISOString()} and` : "up to"} ${until.toISOString()}`;
    throw new CrdBackupError(
      "NOT_FOUND",
      `${describeObject(object)}: no version recorded ${when} in cluster ${scope.cluster}`,
      {
        name: object.name,
      },
    );
  }
  yield* pendingGaps(new Date(until.getTime() + 1));
}

function gapItem(g: ScopeGap): HistoryGap {
  return { type: "gap", from: g.from, to: g.to, reason: g.reason };
}

type Observe = (o: Observation, source: VersionSource, rv?: string) => HistoryItem[];

/** One source's observations of the object: its snapshot's copy, then (a chain) the journal's records. */
async function* readSource(
  storage: StorageBackend,
  source: Source,
  object: ObjectRefer,
  until: Date,
  observe: Observe,
  signal: AbortSignal | undefined,
  copyIn: SnapshotCopy,
  indexes: RecordIndexes | undefined,
): AsyncGenerator<HistoryItem> {
  const id = source.type === "chain" ? source.chain.base : source.snapshot.id;
  const found = await copyIn(id, object, signal);
  yield* observe(
    {
      t: source.start,
      op: "snapshot",
      base: source.type === "chain",
      body: found?.body,
      uid: found?.uid ?? "",
    },
    { snapshot: id },
  );
  if (source.type !== "chain") return;
  const { group, plural } = object.resource;
  let resyncBegin: number | undefined;
  let lastSeen = 0; // record number of the object's last put or delete
  let alive = found !== undefined;
  let n = 0;
  // only the segments whose key index may hold the object, or a re-list of its resource
  const wanted = [objectMember(group, plural, object.namespace, object.name), resyncMember(group, plural)];
  for await (const { record: r, segment } of chainRecords(storage, source.chain, until, signal, {
    wanted,
    indexes,
  })) {
    n++;
    if (Date.parse(r.t) > until.getTime()) continue; // read on: the trailer and digest prove the segment
    if (r.op === "resync") {
      if (r.kind !== "object" || r.group !== group || r.plural !== plural) continue;
      if (r.phase === "begin") resyncBegin = n;
      else if (resyncBegin !== undefined) {
        // a completed re-list that did not see the object: it was deleted while not watched
        if (alive && lastSeen < resyncBegin)
          yield* observe({ t: new Date(r.t), op: "delete", uid: "" }, { segment });
        if (lastSeen < resyncBegin) alive = false;
        resyncBegin = undefined;
      }
      continue;
    }
    if (r.op === "gap" || r.kind !== "object") continue;
    if (
      r.name !== object.name ||
      r.plural !== plural ||
      r.group !== group ||
      r.namespace !== object.namespace
    )
      continue;
    lastSeen = n;
    alive = r.op === "put";
    const t = new Date(r.t);
    yield* r.op === "put"
      ? observe({ t, op: "put", body: r.body, uid: r.uid }, { segment }, r.rv)
      : observe({ t, op: "delete", uid: r.uid }, { segment }, r.rv);
  }
}

/** The object's entry in a snapshot, if it holds one (the whole archive is verified on the way). */
async function snapshotCopy(
  storage: StorageBackend,
  id: string,
  object: ObjectRefer,
  signal: AbortSignal | undefined,
): Promise<{ body: Buffer; uid: string } | undefined> {
  await using snapshot = await fetchSnapshot(storage, id, signal);
  const { group, plural } = object.resource;
  let found: { body: Buffer; uid: string } | undefined;
  for await (const e of snapshot.entries()) {
    if (e.kind !== "object" || found) continue;
    const ref = e.ref;
    if (
      ref.name === object.name &&
      ref.plural === plural &&
      ref.group === group &&
      ref.namespace === object.namespace
    )
      found = { body: e.body, uid: e.record.uid ?? "" };
  }
  return found;
}
