import { randomBytes } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { ArchiveWriter, verifyArchive } from "../../../src/archive/index.ts";
import { SNAPSHOT_ID, objectBody, sha256 } from "./helpers.ts";

/** A real gc() even when the test runner was not started with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("archive writer memory", () => {
  it("does not grow with the number of entries: the index is spooled, not kept", async () => {
    const count = 20_000;
    // Long names make index lines long (~480 bytes): keeping them would cost ~10 MB of heap.
    const ns = "n".repeat(63);
    const writer = new ArchiveWriter(SNAPSHOT_ID);
    const hash = { digest: "", size: 0 };
    const chunks: Buffer[] = [];
    const consumed = (async () => {
      for await (const chunk of writer.stream) {
        chunks.push(chunk as Buffer); // kept for the read-back; counted out of the heap below (Buffers live off-heap)
        hash.size += (chunk as Buffer).length;
      }
    })();

    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < count; i++) {
      const ref = {
        group: "example.com",
        version: "v1",
        plural: "widgets",
        namespace: ns,
        name: `object-${"x".repeat(150)}-${i}`,
      };
      await writer.addObject(ref, objectBody(ref), {
        uid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      });
    }
    collectGarbage();
    const growth = process.memoryUsage().heapUsed - before;

    const totals = await writer.finish();
    await consumed;
    expect(totals.indexEntries).toBe(count);
    expect(growth).toBeLessThan(4 * 1024 * 1024);

    const bytes = Buffer.concat(chunks);
    hash.digest = sha256(bytes);
    expect(hash.digest).toBe(totals.sha256);
    expect((await verifyArchive([bytes], totals)).objects).toBe(count);
  }, 30_000);

  it("awaits backpressure: a consumer that does not read stalls the producer", async () => {
    const writer = new ArchiveWriter(SNAPSHOT_ID);
    const bodySize = 256 * 1024;
    let accepted = 0;
    const producing = (async () => {
      for (let i = 0; i < 40; i++) {
        const ref = { group: "example.com", version: "v1", plural: "widgets", name: `o${i}` };
        // Random base64 compresses little, so what is accepted must go somewhere downstream.
        await writer.addObject(
          ref,
          objectBody(ref, { data: randomBytes(bodySize * 0.75).toString("base64") }),
        );
        accepted++;
      }
    })();

    await sleep(200);
    const stalledAt = accepted;
    expect(stalledAt).toBeLessThan(8); // at most a couple of MiB buffered, never the 10 MiB offered
    await sleep(100);
    expect(accepted).toBe(stalledAt); // still waiting, not merely slow

    let read = 0;
    const consumed = (async () => {
      for await (const chunk of writer.stream) read += (chunk as Buffer).length;
    })();
    await producing;
    const totals = await writer.finish();
    await consumed;
    expect(accepted).toBe(40);
    expect(read).toBe(totals.size);
  });
});
