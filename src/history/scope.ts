/**
 * Which recorded sources a look at one cluster's past reads, from the listing alone: its journal
 * chains (each a base snapshot and its segments) and the snapshots no chain covers, in time order,
 * with the gaps inside the window. A window outside everything recorded is a usage error naming
 * what is recorded; several clusters without --cluster is one too.
 */
import { CrdBackupError } from "../errors.ts";
import { listChains, type Chain } from "../journal/chains.ts";
import { describeWindows } from "../journal/replay/plan.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { listSnapshots, type StoredSnapshot } from "../storage/snapshots.ts";
import { parseInterval } from "../units/duration.ts";
import { isRfc3339 } from "../units/time.ts";

/** `--since` / `--until` / `--show`: an RFC 3339 time, or a duration before `now` (`2h`, `30m`, `7d`). */
export function parseTimeFlag(flag: string, value: string, now: Date = new Date()): Date {
  if (isRfc3339(value)) return new Date(value);
  if (/^\d/.test(value)) {
    try {
      return new Date(now.getTime() - parseInterval(flag, value));
    } catch {
      // said below, with both forms
    }
  }
  throw new CrdBackupError(
    "USAGE",
    `${flag} ${JSON.stringify(value)} is neither an RFC 3339 time (like 2026-12-03T05:20:00Z) nor a duration before now (like 30m, 2h or 7d)`,
  );
}

/** The time a look at the past covers; since undefined: from the first thing recorded. */
export interface TimeWindow {
  since?: Date;
  until: Date;
}

/** One thing read, in time order: a chain (its base, then its segments) or a lone snapshot. */
export type Source =
  | { type: "chain"; start: Date; end: Date; chain: Chain }
  | { type: "snapshot"; start: Date; end: Date; snapshot: StoredSnapshot };

/** Time inside the window nothing recorded, for the resources it names ("*": every one). */
export interface ScopeGap {
  from: Date;
  to: Date;
  reason: string;
  resources: string[];
}

export interface Scope {
  cluster: string;
  window: TimeWindow;
  /** Oldest first; the last source that ends before `since` is kept: it holds the state at `since`. */
  sources: Source[];
  gaps: ScopeGap[];
  /** Every snapshot of the cluster (for the archived CRDs). */
  snapshots: StoredSnapshot[];
}

const iso = (d: Date) => d.toISOString();

/** The sources of the one cluster `cluster` (a uid prefix) names, over `window`. */
export async function openScope(
  storage: StorageBackend,
  window: TimeWindow,
  cluster?: string,
  now: Date = new Date(),
): Promise<Scope> {
  if (window.since && window.since > window.until)
    throw new CrdBackupError("USAGE", `--since ${iso(window.since)} is after --until ${iso(window.until)}`);
  const chains = (await listChains(storage, undefined, now)).filter((c) => c.windows.length > 0);
  const snapshots = await listSnapshots(storage, () => undefined);
  const uids = [
    ...new Set([...chains.map((c) => c.cluster), ...snapshots.map((s) => s.manifest.cluster.uid)]),
  ];
  const chosen = cluster === undefined ? uids : uids.filter((u) => u.startsWith(cluster));
  if (chosen.length !== 1) {
    const what =
      chosen.length === 0
        ? cluster === undefined
          ? `${storage.location} holds no snapshot and no journal`
          : `${storage.location} holds nothing of a cluster ${cluster}… (it holds ${uids.join(", ") || "none"})`
        : `${storage.location} holds ${chosen.length} clusters (${chosen.join(", ")}); say --cluster <uid prefix>`;
    throw new CrdBackupError("USAGE", what);
  }
  const uid = chosen[0]!;
  const mine = chains.filter((c) => c.cluster === uid);
  const snaps = snapshots.filter((s) => s.manifest.cluster.uid === uid);
  // a chain with windows has its base (chains.ts): it starts when its base finished
  const all: Source[] = mine.map((c) => ({
    type: "chain",
    start: new Date(c.baseManifest!.finishedAt),
    end: c.windows.at(-1)!.to,
    chain: c,
  }));
  const covered = (t: Date) => all.some((s) => s.start <= t && t <= s.end);
  for (const s of snaps) {
    const t = new Date(s.manifest.finishedAt);
    if (!covered(t)) all.push({ type: "snapshot", start: t, end: t, snapshot: s });
  }
  all.sort((a, b) => a.start.getTime() - b.start.getTime());

  const { since, until } = window;
  const inWindow = all.filter((s) => s.start <= until && (!since || s.end >= since));
  const before = since ? all.filter((s) => s.end < since).at(-1) : undefined;
  if (inWindow.length === 0) {
    const recorded = describeWindows(mine.flatMap((c) => c.windows));
    const lone = snaps.filter((s) => !covered(new Date(s.manifest.finishedAt))).length;
    throw new CrdBackupError(
      "USAGE",
      `${since ? `${iso(since)} .. ` : "up to "}${iso(until)} is outside everything recorded of cluster ${uid} (journal windows: ${recorded}; snapshots outside them: ${lone})`,
      { cluster: uid },
    );
  }
  const sources = before ? [before, ...inWindow] : inWindow;
  return { cluster: uid, window, sources, gaps: gapsOf(sources, window), snapshots: snaps };
}

/** The chains' gaps and the time between sources, clipped to the window, oldest first. */
function gapsOf(sources: Source[], window: TimeWindow): ScopeGap[] {
  const gaps: ScopeGap[] = [];
  for (const [i, s] of sources.entries()) {
    if (s.type === "chain") for (const g of s.chain.gaps) gaps.push({ ...g });
    const next = sources[i + 1];
    if (next && next.start > s.end) {
      const reason = s.type === "chain" ? "no journal: the next is a snapshot or a new chain" : "no journal";
      gaps.push({ from: s.end, to: next.start, reason, resources: ["*"] });
    }
  }
  const lo = window.since?.getTime() ?? -Infinity;
  const hi = window.until.getTime();
  return gaps
    .filter((g) => g.to.getTime() > lo && g.from.getTime() < hi)
    .map((g) => ({
      ...g,
      from: new Date(Math.max(g.from.getTime(), lo)),
      to: new Date(Math.min(g.to.getTime(), hi)),
    }))
    .sort((a, b) => a.from.getTime() - b.from.getTime());
}

/** Whether a gap concerns a resource (`plural.group`). */
export function gapCovers(g: ScopeGap, resource: string): boolean {
  return g.resources.includes("*") || g.resources.includes(resource);
}
