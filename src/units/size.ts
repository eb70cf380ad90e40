import { CrdBackupError } from "../errors.ts";

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

/** A byte count for people: `512 B`, `1.5 KiB`, `3.2 GiB` (binary units, as --spool-size takes them). */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}
