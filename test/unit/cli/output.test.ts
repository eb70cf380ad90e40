import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { writeReportJson } from "../../../cli/output.ts";

describe("the streamed JSON report", () => {
  it.each([0, 1, 499, 500, 1201])(
    "is byte-identical to JSON.stringify(report, null, 2) with %i entries",
    async (n) => {
      const report = {
        snapshotId: "20261122T041500Z-1a2b3c4d",
        counts: { created: n },
        entries: Array.from({ length: n }, (_, i) => ({
          name: `w-${i}`,
          diff: [{ path: ".spec", op: "changed" }],
          note: 'q"\n',
        })),
      };
      const out = new PassThrough();
      let text = "";
      out.on("data", (c: Buffer) => (text += c.toString()));
      const { entries, ...head } = report;
      async function* streamed() {
        yield* entries; // as a restore's report reads them back from its spool
      }
      await writeReportJson(out, head, streamed());
      expect(text).toBe(JSON.stringify(report, null, 2) + "\n");
    },
  );
});
