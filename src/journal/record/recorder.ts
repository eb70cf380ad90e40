/**
 * `crd-backup record`: a base snapshot, then every change to the selected resources, the CRDs and
 * the Namespaces, from watches, into journal segments (docs/format.md, "Journal format"), until
 * the signal fires. Every --base-interval a new base starts a new chain; the old one records on
 * until the new one follows, so their windows overlap. On the signal, the open segments are
 * written and the spool is given a little time to reach storage.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { snapshotIdTime } from "../../archive/format.ts";
import { Limiter } from "../../concurrency.ts";
import type { KubeClient } from "../../kube/client.ts";
import { clusterIdentity } from "../../kube/cluster.ts";
import type { JsonObject } from "../../json/json.ts";
import type { JournalStats } from "../../report/journal-metrics.ts";
import type { Logger } from "../../report/log.ts";
import type { Filters } from "../../objects/filters.ts";
import type { Recipients } from "../../crypto/keys.ts";
import { takeSnapshot } from "../../snapshot/take.ts";
import type { StorageBackend } from "../../storage/backend.ts";
import { Chain, type ChainContext } from "./chain.ts";
import { findResumePoint } from "./resume.ts";
import { abortion } from "./signal.ts";
import { Uploader } from "./uploader.ts";

export interface RecordOptions {
  filters: Filters;
  pageSize: number;
  /** Resources listed at once (base snapshots, re-lists). */
  concurrency: number;
  flushIntervalMs: number;
  baseIntervalMs: number;
  spoolDir: string;
  spoolBytes: number;
  /** Bases and segments are encrypted to these age recipients; plain when absent. */
  encryptTo?: Recipients;
  /** Each watch lasts this long (a random 1-2x), then resumes. */
  watchTimeoutSeconds?: number;
  /** How long, after the signal, the spool may take to reach storage. */
  drainTimeoutMs?: number;
  signal: AbortSignal;
  log: Logger;
  stats: JournalStats;
  recordedOptions?: JsonObject;
}

/** A chain writes a segment with no records at most this many flush intervals apart. */
export const EMPTY_SEGMENT_INTERVALS = 6;

export interface Clients {
  /** For the base snapshots. */
  client: KubeClient;
  /** For lists and watches: one connection per watched resource. */
  watchClient: KubeClient;
}

export async function record(
  clients: Clients,
  storage: StorageBackend,
  options: RecordOptions,
): Promise<{ spooled: number }> {
  const { log, signal } = options;
  const uploader = new Uploader(storage, {
    dir: options.spoolDir,
    limit: options.spoolBytes,
    stats: options.stats,
    log,
  });
  await uploader.init();
  // a previous recorder's segments first: the chain to continue may be among them
  await Promise.race([uploader.whenDrained(), abortion(signal)]);
  if (signal.aborted) return { spooled: uploader.pending };

  const cluster = await clusterIdentity(clients.client, signal);
  const lists = new Limiter(options.concurrency);
  const ctx: ChainContext = {
    client: clients.watchClient,
    filters: options.filters,
    pageSize: options.pageSize,
    watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
    log,
    listSlot: (list) => lists.run(list),
    uploader,
    flushIntervalMs: options.flushIntervalMs,
    writerOptions: {
      stats: options.stats,
      log,
      emptyEveryMs: EMPTY_SEGMENT_INTERVALS * options.flushIntervalMs,
      encryptTo: options.encryptTo,
    },
  };

  const newChain = async (): Promise<{ chain: Chain; startedAt: number }> => {
    const startedAt = Date.now();
    const base = await takeSnapshot(clients.client, storage, {
      filters: options.filters,
      pageSize: options.pageSize,
      concurrency: options.concurrency,
      encryptTo: options.encryptTo,
      signal,
      log,
      recordedOptions: options.recordedOptions,
    });
    const m = base.manifest;
    const chain = new Chain(
      { cluster: cluster.uid, base: base.id, seq: 0, prev: null, to: new Date(m.finishedAt) },
      ctx,
      signal,
    );
    chain.startFromBase(m);
    log.info("recording a new chain", { base: base.id, status: m.status, objects: m.counts.objects });
    return { chain, startedAt };
  };

  let current: { chain: Chain; startedAt: number };
  const resume = await findResumePoint(storage, cluster.uid, log, Boolean(options.encryptTo));
  if (resume) {
    const chain = new Chain(resume, ctx, signal);
    await chain.resume(resume.rvs, resume.to);
    log.info("continuing the chain", { base: resume.base, seq: resume.seq, since: resume.to.toISOString() });
    // the base's age decides when the next one is due
    current = { chain, startedAt: snapshotIdTime(resume.base).getTime() };
  } else {
    try {
      current = await newChain();
    } catch (e) {
      if (signal.aborted) return { spooled: 0 }; // stopped during the first base: nothing of it is visible
      throw e;
    }
  }
  const chains = new Set<Chain>([current.chain]);

  const flusher = setInterval(() => {
    for (const chain of chains) void chain.writer.flush();
  }, options.flushIntervalMs);

  const rotate = async () => {
    while (!signal.aborted) {
      const due = current.startedAt + options.baseIntervalMs - Date.now();
      await sleep(Math.max(0, due), undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const next = await newChain();
        chains.add(next.chain);
        const old = current.chain;
        current = next;
        // the old chain's final segment ends after the new base finished: the windows overlap
        await old.stop();
        chains.delete(old);
        log.info("chain closed", { base: old.base, segments: old.writer.seq });
      } catch (e) {
        if (signal.aborted) return;
        log.error("new base snapshot failed; the current chain goes on", {
          error: e instanceof Error ? e.message.split("\n")[0] : String(e),
        });
        current.startedAt = Date.now() - options.baseIntervalMs + Math.min(options.baseIntervalMs, 300_000);
      }
    }
  };
  const rotating = rotate();

  await abortion(signal);
  clearInterval(flusher);
  await rotating;
  await Promise.all([...chains].map((c) => c.stop()));
  const spooled = await uploader.drain(options.drainTimeoutMs ?? 20_000);
  if (spooled > 0)
    log.warn("segments left in the spool: the next recorder uploads them", { segments: spooled });
  log.info("recorder stopped", { chains: chains.size });
  return { spooled };
}
