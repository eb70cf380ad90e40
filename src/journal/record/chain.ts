/**
 * One chain being recorded: its writer, and a follower per resource (the CRDs, the Namespaces,
 * and each selected custom resource). The CRD follower drives the others: a CRD that becomes
 * Established is listed and watched, a deleted one's watch ends (the API server has sent its
 * instances' deletes by then) and its delete is recorded.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Manifest } from "../../archive/manifest.ts";
import { describeCrd, discoverCrds, type CrdInfo } from "../../kube/discovery.ts";
import { resourceSelected } from "../../objects/filters.ts";
import { ChainWriter, type ChainPosition, type ChainWriterOptions } from "./chain-writer.ts";
import { CRDS, NAMESPACES, objectResource, rvsName, type DecodedItem } from "./decode.ts";
import { Follower, itemRecord, type FollowerContext } from "./follower.ts";
import { abortion } from "./signal.ts";
import type { Uploader } from "./uploader.ts";

export interface ChainContext extends FollowerContext {
  uploader: Uploader;
  writerOptions: Omit<ChainWriterOptions, "onOverflow" | "uploader">;
  flushIntervalMs: number;
}

export class Chain {
  readonly writer: ChainWriter;
  readonly #ctx: ChainContext;
  readonly #abort = new AbortController();
  readonly #resources = new Map<string, Follower>();
  #crds: Follower | undefined;
  #namespaces: Follower | undefined;
  /** Where each resource's first watch starts (from the base or a segment trailer); used once. */
  #startRvs = new Map<string, string>();
  /** A gap that ends once the followers have caught up (a restart, an overflow). */
  #pendingGap: { from: Date; reason: string } | undefined;
  #stopped = false;

  constructor(position: ChainPosition, ctx: ChainContext, signal: AbortSignal) {
    this.#ctx = ctx;
    signal.addEventListener("abort", () => this.#abort.abort(), { once: true });
    this.writer = new ChainWriter(position, {
      ...ctx.writerOptions,
      uploader: ctx.uploader,
      onOverflow: (since) => void this.#recoverFromOverflow(since),
    });
  }

  get base(): string {
    return this.writer.base;
  }

  /**
   * A new chain on a base just taken: each resource is watched from the resourceVersion its list
   * had in the base; the CRDs and Namespaces (whose list versions a snapshot does not record)
   * are listed again first.
   */
  startFromBase(manifest: Manifest): void {
    for (const r of manifest.resources) {
      if (r.listResourceVersion)
        this.#startRvs.set(rvsName(r.group, r.version, r.plural), r.listResourceVersion);
    }
    this.#startCore(undefined, undefined);
    void this.#announceSynced();
  }

  /**
   * A chain continued after a restart, from its last segment's trailer: every watch resumes where
   * it stopped (a 410 then re-lists), and a gap covers the time the recorder was away, ending
   * once the watches have delivered what happened meanwhile.
   */
  async resume(rvs: Record<string, string>, lastTo: Date): Promise<void> {
    for (const [name, rv] of Object.entries(rvs)) this.#startRvs.set(name, rv);
    const crds = await discoverCrds(this.#ctx.client, {
      pageSize: this.#ctx.pageSize,
      signal: this.#abort.signal,
    });
    for (const info of crds) this.#follow(info);
    this.#startCore(rvs[CRDS.name], rvs[NAMESPACES.name]);
    this.#pendingGap = { from: lastTo, reason: "the recorder was not running: changes were received late" };
    void this.#closeGapWhenSynced();
    void this.#announceSynced();
  }

  #startCore(crdsRv: string | undefined, namespacesRv: string | undefined): void {
    const signal = this.#abort.signal;
    this.#crds = new Follower(CRDS, this.#ctx, this.writer, {
      rv: crdsRv,
      signal,
      onItem: (op, item) => this.#onCrd(op, item),
    });
    this.#namespaces = new Follower(NAMESPACES, this.#ctx, this.writer, { rv: namespacesRv, signal });
    this.#crds.start();
    this.#namespaces.start();
  }

  #onCrd(op: "put" | "delete", item: DecodedItem): void {
    const info = describeCrd(item.raw!);
    if (!resourceSelected(this.#ctx.filters, info.group, info.plural)) return;
    this.writer.add(itemRecord(op, item));
    if (op === "put") this.#follow(info);
    else this.#unfollow(info.name);
  }

  /** Follows a selected CRD's resource once it is served, at the version a snapshot lists. */
  #follow(info: CrdInfo): void {
    // while overflowed, records are dropped: a watch started now would skip what it drops
    if (this.#stopped || this.writer.overflowed) return;
    if (!resourceSelected(this.#ctx.filters, info.group, info.plural)) return;
    const current = this.#resources.get(info.name);
    if (!info.established || !info.listVersion) return;
    if (current?.resource.version === info.listVersion) return;
    if (current) this.#unfollow(info.name); // its version changed: list it at the new one
    const resource = objectResource(info);
    const rv = this.#startRvs.get(resource.name);
    this.#startRvs.delete(resource.name);
    const follower = new Follower(resource, this.#ctx, this.writer, { rv, signal: this.#abort.signal });
    this.#resources.set(info.name, follower);
    this.#ctx.log.info(rv ? "watching" : "listing and watching", { resource: resource.name });
    follower.start();
  }

  #unfollow(name: string): void {
    const follower = this.#resources.get(name);
    if (!follower) return;
    this.#resources.delete(name);
    this.writer.rvs.delete(follower.resource.name);
    this.#ctx.log.info("no longer watching: its CRD is gone or changed", {
      resource: follower.resource.name,
    });
    void follower.stop();
  }

  #all(): Follower[] {
    return [this.#crds, this.#namespaces, ...this.#resources.values()].filter((f) => f !== undefined);
  }

  async #synced(): Promise<void> {
    await this.#crds?.synced; // the CRD list or watch starts the resources' followers
    await Promise.all(this.#all().map((f) => f.synced));
  }

  async #announceSynced(): Promise<void> {
    await Promise.race([this.#synced(), abortion(this.#abort.signal)]);
    if (!this.#abort.signal.aborted) {
      this.#ctx.log.info("following every resource", { base: this.base, resources: this.#resources.size });
    }
  }

  async #closeGapWhenSynced(): Promise<void> {
    await Promise.race([this.#synced(), abortion(this.#abort.signal)]);
    // what a resumed watch owes is sent at once; one flush interval lets it arrive
    await sleep(this.#ctx.flushIntervalMs, undefined, { signal: this.#abort.signal }).catch(() => undefined);
    this.#closeGap();
  }

  #closeGap(): void {
    if (!this.#pendingGap) return;
    this.writer.addGap(this.#pendingGap.from, this.#pendingGap.reason, ["*"]);
    this.#pendingGap = undefined;
  }

  async #stopFollowers(): Promise<void> {
    const all = this.#all();
    this.#resources.clear();
    this.#crds = this.#namespaces = undefined;
    await Promise.all(all.map((f) => f.stop()));
  }

  /**
   * The spool was full: stop following, wait for storage to take the spool, then list everything
   * again, continuing the chain with a gap from its last stored segment to the end of the lists.
   */
  async #recoverFromOverflow(since: Date): Promise<void> {
    const followers = this.#all();
    this.#resources.clear();
    for (const f of followers) void f.stop();
    await Promise.all(followers.map((f) => f.stop()));
    await Promise.race([this.#ctx.uploader.whenDrained(), abortion(this.#abort.signal)]);
    if (this.#abort.signal.aborted || this.#stopped) return;
    this.#ctx.log.info("storage took the spool: re-listing everything", { base: this.base });
    this.writer.resume();
    this.writer.rvs.clear();
    this.#startRvs.clear();
    this.#pendingGap = { from: since, reason: "the spool overflowed while storage was unreachable" };
    this.#startCore(undefined, undefined);
    await Promise.race([this.#synced(), abortion(this.#abort.signal)]);
    this.#closeGap();
  }

  /** Stops following and writes the chain's final segment. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#stopFollowers();
    this.#closeGap();
    await this.writer.close();
  }
}
