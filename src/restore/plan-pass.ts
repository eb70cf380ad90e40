/**
 * Planning's pass over the source's entries: per CRD, namespace and object, what the restore will
 * do, each object decided once its resource's live read is in (plan-live.ts). It runs over a pass
 * of its own (plan.ts), or inside the source's verification pass (inPassPlan): one pass over the
 * archive fewer, about a second of CPU at 50,000 objects. Nothing it decides is acted on before
 * that pass has verified the whole archive: the plan is only built from it afterwards.
 *
 * Inside the verification pass the live reads cannot wait for the source's text digests (the pass
 * has not read them yet): they keep each live object's own (LiveObject.text), and the pass
 * compares the two. An object whose texts differ is decided after the pass, on its live object
 * read again (a GET; a whole resource's LIST past FETCHED), as the plan's own read would have.
 */
import { mapConcurrent } from "../concurrency.ts";
import type { KubeClient } from "../kube/client.ts";
import { parseJson, type JsonObject } from "../json/json.ts";
import { objectMembers } from "../json/scan.ts";
import type { ArchiveEntry } from "../archive/reader.ts";
import type { EntryModifiers } from "../modifiers/entries.ts";
import { EntryFilter } from "../objects/entry-filter.ts";
import {
  digestOf,
  entryTextDigest,
  getJson,
  liveKey,
  liveObjects,
  objectPath,
  type LiveObject,
} from "../objects/live.ts";
import { targetNamespace, type NamespaceMapping, type RestoreOptions } from "./options.ts";
import { Decisions, type Decision } from "./decisions.ts";
import { Identities, type ItemIdentity } from "./item.ts";
import type { CrdPlan, ResourcePlan } from "./types.ts";
import type { SyncScope } from "./prune.ts";
import type { Gathered } from "./stored-texts.ts";
import { LiveReads, resourceKeyOf, selectedResources, syncScope } from "./plan-live.ts";
import { KeptEntries, type KeptEntry } from "./kept-entries.ts";
import type { PlainManifest } from "../archive/manifest.ts";
import type { EntrySeen } from "../source/verified.ts";
import { refuseBuiltinResources } from "./guards.ts";
import { decide, noteArchivedCrd, planCrd } from "./decide.ts";

/** Objects whose texts differ read again one by one at most, per resource: past it, one LIST. */
const FETCHED = 256;
/** Live objects read again at once. */
const FETCHES = 8;

export class PlanPass {
  /** Filled as the pass reaches each resource (the reads run meanwhile). */
  readonly resources = new Map<string, ResourcePlan>();
  readonly identities: Identities;
  /** The archive's CRDs, planned once their resource is read: slots keep the archive's order. */
  readonly crds: CrdPlan[] = [];
  readonly objects = new Decisions();
  readonly keeping = new KeptEntries();
  readonly captured = new Map<string, JsonObject>();
  readonly targets = new Map<string, string>();
  readonly dependents = new Map<number, readonly string[]>();
  readonly owned = new Set<string>();
  readonly refused: { count: number; first?: string } = { count: 0 };
  readonly archivedCrds = new Set<string>();
  /** A sync's note of the live objects the source has (the rest in scope is deleted). */
  readonly inSource = new Set<LiveObject>();
  readonly #crdBodies = new Map<string, { body: JsonObject; slot: number }>();
  #crdSlots = 0;
  #ordinal = -1;
  /** Objects whose text differs from their live object's: decided in resolve(). */
  readonly #compare: number[] = [];
  readonly #filter: EntryFilter;
  readonly #keys: ReadonlySet<string>;
  readonly #mapping: NamespaceMapping;

  readonly reads: LiveReads;
  readonly #options: RestoreOptions;
  readonly #modifiers: EntryModifiers | undefined;
  readonly #scope: SyncScope | undefined;

  constructor(
    reads: LiveReads,
    keys: ReadonlySet<string>,
    options: RestoreOptions,
    modifiers: EntryModifiers | undefined,
    scope: SyncScope | undefined,
  ) {
    this.reads = reads;
    this.#options = options;
    this.#modifiers = modifiers;
    this.#scope = scope;
    this.#keys = keys;
    this.#filter = new EntryFilter(options.filters, keys);
    this.#mapping = { namespaceMap: options.namespaceMap, namespacePrefix: options.namespacePrefix };
    this.identities = new Identities(this.resources, this.#mapping, modifiers);
  }

  /** One entry of the pass, in the archive's order; a promise only while its resource is being read. */
  visit(entry: ArchiveEntry): void | Promise<void> {
    if (entry.kind === "crd") {
      this.archivedCrds.add(entry.record.name);
      if (!this.#keys.has(entry.record.name)) return;
      const body = parseJson(entry.body.toString("utf8")) as JsonObject;
      this.#crdBodies.set(entry.record.name, { body, slot: this.#crdSlots++ });
    } else if (entry.kind === "namespace") {
      this.captured.set(entry.record.name, parseJson(entry.body.toString("utf8")) as JsonObject);
    } else if (entry.kind === "object") {
      const ordinal = ++this.#ordinal;
      if (!this.#filter.selectsRef(entry.ref)) return;
      const key = resourceKeyOf(entry.ref.plural, entry.ref.group);
      if (this.resources.has(key)) return this.#object(entry, ordinal);
      return this.reads.resource(key).then((resource) => {
        if (!this.resources.has(key)) {
          this.resources.set(key, resource);
          this.planCrdOf(resource);
        }
        this.#object(entry, ordinal);
      });
    }
  }

  /** The resource's archived CRD, planned before its first object is decided. */
  planCrdOf(resource: ResourcePlan): void {
    const archived = this.#crdBodies.get(resource.key);
    if (!archived) return;
    this.#crdBodies.delete(resource.key);
    this.#modifiers?.noteCrd(resource.key, archived.body);
    noteArchivedCrd(resource, archived.body);
    this.crds[archived.slot] = planCrd(resource.key, archived.body, this.reads.crds.get(resource.key));
  }

  #object(entry: Extract<ArchiveEntry, { kind: "object" }>, ordinal: number): void {
    const resourceKey = resourceKeyOf(entry.ref.plural, entry.ref.group);
    // planning reads only what it needs: the top-level keys, and labels when a selector asks
    const { members } = objectMembers(entry.body, 0);
    if (!this.#filter.selectsLabels(entry.body, members)) {
      // not restored, but the source has it: never deleted
      const ns = entry.ref.namespace;
      this.#noteSource(
        resourceKey,
        ns === undefined ? undefined : targetNamespace(this.#mapping, ns).name,
        entry.ref.name,
      );
      return;
    }
    const item = this.identities.planned(entry);
    if (!item) return;
    const live = this.#noteSource(item.resource.key, item.namespace, item.name);
    let decision: Decision;
    if (live?.text === undefined) decision = decide(item, entry.body, members, this.#options, live);
    else {
      // the live read kept its text: the same text is unchanged, as if read so; another is compared after the pass
      decision = decide(item, entry.body, members, this.#options, { uid: live.uid, sameText: true });
      if (
        decision.action === "unchanged" &&
        entryTextDigest(entry, this.#options.restoreStatus) !== live.text
      ) {
        this.#compare.push(ordinal);
        // its body kept as an update's is: resolve() decides on it
        this.keeping.add(ordinal, entry, "update", this.#modifiers !== undefined);
        this.#owners(ordinal, item);
        return;
      }
    }
    this.#decided(ordinal, item, decision);
    this.keeping.add(ordinal, entry, decision.action, this.#modifiers !== undefined);
    this.#owners(ordinal, item);
  }

  #decided(ordinal: number, item: ItemIdentity, decision: Decision): void {
    this.objects.set(ordinal, decision);
    if (decision.action === "conflict" && item.resource.policy === "fail" && !item.resource.conflict) {
      this.refused.count++;
      this.refused.first ??= `${item.resource.key} ${item.namespace ? `${item.namespace}/` : ""}${item.name}`;
    }
    if (item.namespace && (decision.action === "create" || decision.action === "update"))
      this.targets.set(item.namespace, item.sourceNamespace!);
  }

  #owners(ordinal: number, item: ItemIdentity): void {
    if (item.ownerUids.length === 0) return;
    this.dependents.set(ordinal, item.ownerUids);
    for (const uid of item.ownerUids) this.owned.add(uid);
  }

  /** The live object the source has under this key, noted for a sync (it is not deleted). */
  #noteSource(resource: string, namespace: string | undefined, name: string): LiveObject | undefined {
    const live = this.resources.get(resource)?.live.get(liveKey(namespace, name));
    if (this.#scope && live) this.inSource.add(live);
    return live;
  }

  /**
   * Decides the objects whose text differed from their live object's: each live object read again
   * and compared in the comparable form. `entries`: a pass over the source, when the plan kept no
   * bodies (over budget).
   */
  async resolve(client: KubeClient, entries: () => AsyncIterable<KeptEntry>): Promise<void> {
    if (this.#compare.length === 0) return;
    const wanted = new Set(this.#compare);
    const found: KeptEntry[] = [];
    for await (const kept of this.keeping.entries() ?? entries())
      if (wanted.has(kept.ordinal)) found.push(kept);
    const items = found.map(({ ordinal, entry }) => ({
      ordinal,
      entry,
      item: this.identities.planned(entry)!,
    }));
    const perResource = new Map<string, number>();
    for (const { item } of items)
      perResource.set(item.resource.key, (perResource.get(item.resource.key) ?? 0) + 1);
    // many in one resource: one LIST parsed whole costs less than as many GETs
    const listed = new Map<string, Map<string, LiveObject>>();
    for (const [key, count] of perResource) {
      if (count <= FETCHED) continue;
      const r = this.resources.get(key)!;
      listed.set(
        key,
        await liveObjects(client, r.group, r.version, r.plural, {
          withStatus: this.#options.restoreStatus,
          signal: this.#options.signal,
        }),
      );
    }
    const lives = await mapConcurrent(items, FETCHES, async ({ item }) => {
      const at = liveKey(item.namespace, item.name);
      const all = listed.get(item.resource.key);
      if (all) return all.get(at);
      const r = item.resource;
      const obj = await getJson(
        client,
        objectPath(r.group, r.version, r.plural, item.namespace, item.name),
        this.#options.signal,
      );
      if (!obj) return undefined;
      const md = obj["metadata"] as JsonObject | undefined;
      const uid = typeof md?.["uid"] === "string" ? md["uid"] : (r.live.get(at)?.uid ?? "");
      return { uid, digest: digestOf(obj, this.#options.restoreStatus) };
    });
    items.forEach(({ ordinal, entry, item }, i) => {
      const { members } = objectMembers(entry.body, 0);
      this.#decided(ordinal, item, decide(item, entry.body, members, this.#options, lives[i]));
    });
  }
}

/**
 * Planning inside the source's verification pass, with live reads started at once that keep their
 * texts: only where the plan would compare texts (gathered: no mapping, no modifiers, within
 * MAX_STORED_TEXTS) and nothing else reads the archive first (no --version-map); undefined
 * otherwise. Anything the pass cannot plan (a read that fails, a refusal) leaves it to the plan's
 * own pass, with the same reads, which meets the same in its order.
 */
export function inPassPlan(
  client: KubeClient,
  manifest: PlainManifest,
  options: RestoreOptions,
  gathered: Gathered,
): InPassPlan | undefined {
  if (!gathered.texts || options.modifiers || (options.versionMap?.size ?? 0) > 0) return undefined;
  let scope: SyncScope | undefined;
  try {
    refuseBuiltinResources(manifest.snapshotId, manifest.resources);
    scope = syncScope(manifest, options);
  } catch {
    return undefined; // the plan refuses the source, in its turn
  }
  const selected = selectedResources(manifest, options);
  const keys = new Set(selected.map((r) => resourceKeyOf(r.plural, r.group)));
  const reads = new LiveReads(client, selected, options, undefined, scope, "keep");
  return new InPassPlan(reads, new PlanPass(reads, keys, options, undefined, scope));
}

/**
 * Bodies of the entries the verification pass holds while it runs ahead of the live reads, at
 * most: past it the pass waits. The pass's own work (decompress, hash, parse) then overlaps the
 * API server's encoding of the pages, instead of waiting for each resource's.
 */
const AHEAD_BYTES = 16 * 1024 * 1024;

/** The entries planning reads. */
type Planned = Extract<ArchiveEntry, { kind: "crd" | "namespace" | "object" }>;

export class InPassPlan {
  readonly reads: LiveReads;
  readonly planned: PlanPass;
  #failed = false;
  /** Entries held, in the archive's order, from #head on: planned once their resource is read. */
  #ahead: Planned[] = [];
  #head = 0;
  #aheadBytes = 0;
  /** Planning what is held: set while anything is held or waits for a read. */
  #draining: Promise<void> | undefined;
  /** Settles when what is held is back within AHEAD_BYTES (or planning stopped). */
  #room: PromiseWithResolvers<void> | undefined;

  constructor(reads: LiveReads, planned: PlanPass) {
    this.reads = reads;
    this.planned = planned;
  }

  /**
   * The verification pass's visitor, instead of `seen` (the texts gathered): the pass compares
   * texts itself, so none are held; `seen` is told if the pass fails.
   */
  visitor(seen: EntrySeen): EntrySeen {
    const both: EntrySeen = (entry) => {
      if (this.#failed || entry.kind === "header" || entry.kind === "index") return;
      if (this.#draining) return this.#hold(entry);
      let waited: void | Promise<void>;
      try {
        waited = this.planned.visit(entry);
      } catch {
        this.#failed = true;
        return;
      }
      // its resource is being read: the pass goes on, holding what comes meanwhile
      if (waited) this.#draining = this.#drain(waited);
    };
    if (seen.abandon) both.abandon = seen.abandon;
    return both;
  }

  #hold(entry: Planned): Promise<void> | undefined {
    // a copy: the reader's body may be a view of a whole decompressed chunk
    this.#ahead.push({ ...entry, body: Buffer.from(entry.body) });
    this.#aheadBytes += entry.body.length;
    if (this.#aheadBytes <= AHEAD_BYTES) return undefined;
    this.#room ??= Promise.withResolvers<void>();
    return this.#room.promise;
  }

  async #drain(first: Promise<void>): Promise<void> {
    try {
      await first;
      while (this.#head < this.#ahead.length) {
        const entry = this.#ahead[this.#head]!;
        this.#ahead[this.#head++] = undefined as never;
        this.#aheadBytes -= entry.body.length;
        if (this.#aheadBytes <= AHEAD_BYTES) this.#freeRoom();
        const waited = this.planned.visit(entry);
        if (waited) await waited;
      }
    } catch {
      this.#failed = true;
    } finally {
      this.#ahead = [];
      this.#head = 0;
      this.#aheadBytes = 0;
      this.#draining = undefined;
      this.#freeRoom();
    }
  }

  #freeRoom(): void {
    this.#room?.resolve();
    this.#room = undefined;
  }

  /** The pass's plan once it planned every entry; undefined: plan over a pass of its own. */
  async pass(): Promise<PlanPass | undefined> {
    await this.#draining;
    return this.#failed ? undefined : this.planned;
  }
}
