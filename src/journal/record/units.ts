import { CrdBackupError } from "../../errors.ts";

const INTERVAL_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A time interval as Go and kubectl write durations (`5s`, `1m30s`, `24h`, `500ms`, plus `d` for
 * days), in milliseconds. `m` is minutes here: --keep-within's calendar months make no sense for
 * an interval between two flushes.
 */
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

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A size in bytes, as Kubernetes quantities write them: `268435456`, `256Mi`, `1Gi`, `500M`. */
export function parseSize(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2] ?? ""]!) : NaN;
  if (!(bytes >= 1)) {
    throw new CrdBackupError("USAGE", `${flag} "${value}": use a size like 268435456, 256Mi or 1Gi`);
  }
  return bytes;
}
