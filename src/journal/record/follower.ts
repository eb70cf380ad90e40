/**
 * Follows one resource (a custom resource, the CRDs or the Namespaces) into a chain: LIST (a
 * resync) when it has no resourceVersion to start from, then WATCH from the last one seen, again
 * and again, as client-go's reflector does. A watch that ends is resumed where it stopped; one
 * that expired (410 Gone) is re-listed and a gap recorded from when it was last known good to the
 * end of the re-list, since the states in between may be missing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient } from "../../kube/client.ts";
import { listRawPages, newListOutcome } from "../../kube/list.ts";
import { isGone, metadataString, watchEvents, type WatchEvent } from "../../kube/watch.ts";
import type { Logger } from "../../report/log.ts";
import { namespaceSelected, type Filters } from "../../objects/filters.ts";
import type { PendingRecord } from "../segment-format.ts";
import type { ChainWriter } from "./chain-writer.ts";
import { decodeItem, type DecodedItem, type FollowedResource } from "./decode.ts";

export interface FollowerContext {
  client: KubeClient;
  filters: Filters;
  pageSize: number;
  /** The API server ends each watch after this; it is then resumed. */
  watchTimeoutSeconds: number;
  log: Logger;
  /** Lists run through this, a few at a time (a resync of everything must not list all at once). */
  listSlot: <T>(fn: () => Promise<T>) => Promise<T>;
}

export type ItemHandler = (op: "put" | "delete", item: DecodedItem) => void;

/** The put or delete record of an object from a list or a watch (the chain writer stamps its time). */
export function itemRecord(op: "put" | "delete", item: DecodedItem): PendingRecord {
  const { key, uid, rv } = item;
  return op === "put" ? { op, ...key, uid, rv, body: item.body } : { op, ...key, uid, rv };
}

export class Follower {
  readonly resource: FollowedResource;
  readonly #ctx: FollowerContext;
  readonly #writer: ChainWriter;
  readonly #abort = new AbortController();
  readonly #signal: AbortSignal;
  readonly #onItem: ItemHandler | undefined;
  #rv: string | undefined;
  /** When the watch was last known good (an event, a bookmark, a connection): a gap starts there. */
  #lastGood = Date.now();
  #done: Promise<void> = Promise.resolve();
  #synced!: () => void;
  /** Resolves once the first list ended or the first watch was established. */
  readonly synced = new Promise<void>((resolve) => (this.#synced = resolve));

  constructor(
    resource: FollowedResource,
    ctx: FollowerContext,
    writer: ChainWriter,
    options: { rv?: string; signal: AbortSignal; onItem?: ItemHandler },
  ) {
    this.resource = resource;
    this.#ctx = ctx;
    this.#writer = writer;
    this.#rv = options.rv || undefined;
    this.#signal = AbortSignal.any([options.signal, this.#abort.signal]);
    this.#onItem = options.onItem;
  }

  start(): void {
    this.#done = this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  async #run(): Promise<void> {
    const log = this.#ctx.log;
    let delay = 500;
    let gapFrom: number | undefined;
    while (!this.#signal.aborted) {
      try {
        if (this.#rv === undefined) {
          await this.#ctx.listSlot(() => this.#resync());
          if (gapFrom !== undefined) {
            this.#writer.addGap(new Date(gapFrom), "watch expired (410 Gone): re-listed", [
              this.resource.gapName,
            ]);
            gapFrom = undefined;
          }
        }
        await this.#watch();
        delay = 500;
      } catch (e) {
        if (this.#signal.aborted) break;
        if (isGone(e)) {
          log.warn("watch expired (410 Gone): re-listing", { resource: this.resource.name });
          gapFrom ??= this.#lastGood;
          this.#rv = undefined;
          continue;
        }
        log.warn("watch failed, retrying", {
          resource: this.resource.name,
          error: e instanceof Error ? e.message.split("\n")[0] : String(e),
        });
        await sleep(delay * (0.5 + Math.random() / 2), undefined, { signal: this.#signal }).catch(
          () => undefined,
        );
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  async #resync(): Promise<void> {
    const r = this.resource;
    const writer = this.#writer;
    const range = { kind: r.kind, group: r.group, version: r.version, plural: r.plural };
    writer.add({ op: "resync", phase: "begin", ...range, rv: this.#rv ?? "" });
    const outcome = newListOutcome();
    const pages = listRawPages(
      this.#ctx.client,
      r.path,
      {
        pageSize: this.#ctx.pageSize,
        labelSelector: r.kind === "object" ? this.#ctx.filters.selector : undefined,
        signal: this.#signal,
      },
      outcome,
    );
    for await (const page of pages) {
      for (let at = page.nextItem(); at >= 0;) {
        const item = decodeItem(r, page.bytes, at);
        at = page.nextItem(item.end);
        this.#emit("put", item);
        await writer.room();
      }
    }
    writer.add({ op: "resync", phase: "end", ...range, rv: outcome.resourceVersion });
    this.#setRv(outcome.resourceVersion);
    this.#lastGood = Date.now();
    this.#synced();
  }

  async #watch(): Promise<void> {
    const events = watchEvents(this.#ctx.client, this.resource.path, {
      resourceVersion: this.#rv!,
      labelSelector: this.resource.kind === "object" ? this.#ctx.filters.selector : undefined,
      // spread the watches' ends, as client-go does, so they do not all reconnect at once
      timeoutSeconds: Math.round(this.#ctx.watchTimeoutSeconds * (1 + Math.random())),
      signal: this.#signal,
      onOpen: () => {
        opened = true;
        this.#synced();
      },
    });
    // Known good: up to each event, and up to the moment an open watch ends or drops (everything
    // before that was delivered); not from its start, since a 410 comes as its first event.
    let opened = false;
    try {
      for await (const event of events) {
        this.#lastGood = Date.now();
        this.#handle(event);
        await this.#writer.room();
      }
      this.#lastGood = Date.now();
    } catch (e) {
      if (opened && !isGone(e)) this.#lastGood = Date.now();
      throw e;
    }
  }

  #handle(event: WatchEvent): void {
    if (event.type === "BOOKMARK") {
      const rv = metadataString(event.bytes, event.objectStart, "resourceVersion");
      if (rv) this.#setRv(rv);
      return;
    }
    const item = decodeItem(this.resource, event.bytes, event.objectStart);
    this.#emit(event.type === "DELETED" ? "delete" : "put", item);
    if (item.rv) this.#setRv(item.rv);
  }

  #emit(op: "put" | "delete", item: DecodedItem): void {
    const r = this.resource;
    const selected =
      r.kind === "object"
        ? namespaceSelected(this.#ctx.filters, item.key.namespace)
        : r.kind === "namespace"
          ? namespaceSelected(this.#ctx.filters, item.key.name)
          : true; // CRDs: onItem decides (it knows the filters' resource rules)
    if (selected && r.kind !== "crd") this.#writer.add(itemRecord(op, item));
    this.#onItem?.(op, item);
  }

  #setRv(rv: string): void {
    this.#rv = rv;
    this.#writer.rvs.set(this.resource.name, rv);
  }
}
