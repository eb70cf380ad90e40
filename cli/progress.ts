import type { SnapshotProgress } from "../src/snapshot/take.ts";
import { formatBytes } from "./output.ts";

/** A one-line progress display on a terminal; nothing at all when stderr is not one (logs say enough). */
export function progressDisplay(): { update: (p: SnapshotProgress) => void; done: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 150) return;
      last = now;
      shown = true;
      process.stderr.write(
        `\r\x1b[2Kresources ${p.resourcesDone}/${p.resources}  objects ${p.objects.toLocaleString("en-US")}  ${formatBytes(p.bytes)}`,
      );
    },
    done() {
      if (shown) process.stderr.write("\r\x1b[2K");
    },
  };
}
