/**
 * S3 Object Lock retention for what crd-backup writes (`--retain`, `--retention-mode`): every
 * object gets a retain-until date, so no credential (in compliance mode, not even the root user)
 * can delete or overwrite it before then. The duration words are those of `--keep-within`.
 */
import { CrdBackupError } from "../errors.ts";
import { durationAfter } from "../units/duration.ts";

export type RetentionMode = "GOVERNANCE" | "COMPLIANCE";

export interface ObjectLockRetention {
  mode: RetentionMode;
  /** The retain-until date of an object written at `now`. */
  until: (now: Date) => Date;
  /** As given, for messages: `30d`, `90` (seconds). */
  duration: string;
}

/**
 * `--retain` and `--retention-mode` as a retention setting: a duration like 30d, 12h or 1y6m, or
 * plain seconds (short retentions, for tests); mode governance (default) or compliance.
 */
export function parseRetention(duration: string, mode: string = "governance"): ObjectLockRetention {
  const m = mode.toUpperCase();
  if (m !== "GOVERNANCE" && m !== "COMPLIANCE") {
    throw new CrdBackupError("USAGE", `--retention-mode "${mode}": use governance or compliance`);
  }
  let until: (now: Date) => Date;
  if (/^\d+$/.test(duration)) {
    const seconds = Number(duration);
    if (seconds < 1) throw new CrdBackupError("USAGE", `--retain ${duration}: must be at least 1 second`);
    until = (now) => new Date(now.getTime() + seconds * 1000);
  } else {
    durationAfter(duration, new Date(), "--retain"); // a bad duration is a usage error now
    until = (now) => durationAfter(duration, now, "--retain");
  }
  return { mode: m, until, duration };
}
