/**
 * Durations, in the two grammars users already write:
 * - calendar durations, restic's (`--keep-within`, `--retain`, `--grace`): `1y2m3w4d5h`, years,
 *   months, weeks, days and hours in this order, with calendar arithmetic for years and months;
 * - intervals, Go's and kubectl's (`--flush-interval`, `--base-interval`): `500ms`, `1m30s`, `24h`,
 *   plus `d`.
 * `m` is months in the first and minutes in the second; both are documented and in use, and
 * reading a `--keep-within 6m` as six minutes would make prune delete half a year of snapshots,
 * so neither meaning can change. Each parser's usage error says which it is.
 */
import { CrdBackupError } from "../errors.ts";

const DURATION = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$/;

function durationParts(within: string, flag: string): [number, number, number, number, number] {
  const m = DURATION.exec(within);
  if (!m || within === "") {
    throw new CrdBackupError(
      "USAGE",
      `${flag} "${within}": use a duration like 2h, 7d, 4w, 6m or 1y2m3d (y years, m months, w weeks, d days, h hours)`,
    );
  }
  return m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number];
}

/** The instant `within` before `from`, with calendar arithmetic for years and months. */
export function durationBefore(within: string, from: Date): Date {
  const [y, mo, w, d, h] = durationParts(within, "--keep-within");
  const t = new Date(from);
  t.setUTCFullYear(t.getUTCFullYear() - y, t.getUTCMonth() - mo);
  return new Date(t.getTime() - ((w * 7 + d) * 24 + h) * 3600_000);
}

/** The instant `duration` after `from` (the same words), e.g. an Object Lock retain-until date. */
export function durationAfter(duration: string, from: Date, flag = "--retain"): Date {
  const [y, mo, w, d, h] = durationParts(duration, flag);
  const t = new Date(from);
  t.setUTCFullYear(t.getUTCFullYear() + y, t.getUTCMonth() + mo);
  return new Date(t.getTime() + ((w * 7 + d) * 24 + h) * 3600_000);
}

const INTERVAL_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An interval (`5s`, `1m30s`, `24h`, `500ms`, `7d`) in milliseconds; `m` is minutes here. */
export function parseInterval(flag: string, value: string): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(value)
    ? [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)]
    : [];
  const ms = parts.reduce((sum, m) => sum + Number(m[1]) * INTERVAL_UNITS[m[2]!]!, 0);
  if (parts.length === 0 || !(ms >= 1)) {
    throw new CrdBackupError(
      "USAGE",
      `${flag} "${value}": use a duration like 500ms, 5s, 1m30s, 24h or 7d (ms, s, m minutes, h, d)`,
    );
  }
  return Math.round(ms);
}
