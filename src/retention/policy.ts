import { CrdBackupError } from "../errors.ts";
import { durationBefore } from "../units/duration.ts";

/**
 * restic's retention policies (https://restic.readthedocs.io, "Removing snapshots according to a
 * policy"): keep the newest `last` snapshots; for the newest `hourly` hours (days, weeks, months,
 * years) that have snapshots, the newest snapshot of each; and every snapshot taken within
 * `within` of the newest one. Calendar periods are in UTC, weeks are ISO weeks.
 */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** A restic duration: `1y2m3w4d5h` (years, months, weeks, days, hours; any subset, in this order). */
  within?: string;
}

export interface Candidate {
  id: string;
  time: Date;
  /** false for a partial snapshot (some resource was not captured). */
  complete: boolean;
}

export interface Decision {
  id: string;
  time: Date;
  keep: boolean;
  /** Which rules keep it, e.g. ["last", "daily"]; empty when it goes. */
  reasons: string[];
}

export function isEmptyPolicy(p: RetentionPolicy): boolean {
  return !p.last && !p.hourly && !p.daily && !p.weekly && !p.monthly && !p.yearly && (p.within ?? "") === "";
}

function isoWeek(t: Date): string {
  // the ISO week belongs to the year of its Thursday
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${week}`;
}

const BUCKETS: [keyof RetentionPolicy, (t: Date) => string][] = [
  ["hourly", (t) => t.toISOString().slice(0, 13)],
  ["daily", (t) => t.toISOString().slice(0, 10)],
  ["weekly", isoWeek],
  ["monthly", (t) => t.toISOString().slice(0, 7)],
  ["yearly", (t) => t.toISOString().slice(0, 4)],
];

/**
 * Decides, for the snapshots of one cluster, which to keep. On top of the policy, the newest
 * complete snapshot is always kept: a run of partial snapshots must never push out the last good
 * one. An empty policy is refused, as restic does: it would mean "delete everything".
 */
export function applyPolicy(snapshots: Candidate[], policy: RetentionPolicy): Decision[] {
  if (isEmptyPolicy(policy)) {
    throw new CrdBackupError(
      "USAGE",
      "no retention policy: give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within",
    );
  }
  const newestFirst = [...snapshots].sort(
    (a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1),
  );
  const decisions = newestFirst.map((s) => ({
    id: s.id,
    time: s.time,
    keep: false,
    reasons: [] as string[],
  }));
  const keep = (i: number, reason: string) => {
    decisions[i]!.keep = true;
    decisions[i]!.reasons.push(reason);
  };

  for (let i = 0; i < Math.min(policy.last ?? 0, decisions.length); i++) keep(i, "last");
  for (const [rule, bucketOf] of BUCKETS) {
    let left = (policy[rule] as number | undefined) ?? 0;
    let previous: string | undefined;
    for (let i = 0; i < newestFirst.length && left > 0; i++) {
      const bucket = bucketOf(newestFirst[i]!.time);
      if (bucket === previous) continue;
      previous = bucket;
      keep(i, rule);
      left--;
    }
  }
  if (policy.within && newestFirst.length > 0) {
    const since = durationBefore(policy.within, newestFirst[0]!.time);
    newestFirst.forEach((s, i) => {
      if (s.time >= since) keep(i, "within");
    });
  }
  const newestComplete = newestFirst.findIndex((s) => s.complete);
  if (newestComplete >= 0 && !decisions[newestComplete]!.keep) keep(newestComplete, "newest complete");
  return decisions;
}
