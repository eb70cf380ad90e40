import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { KubeResponse, type KubeClient, type KubeRequest } from "../../../src/kube/client.ts";
import { listRawPages, newListOutcome } from "../../../src/kube/list.ts";
import { cleanObjectText } from "../../../src/objects/clean-text.ts";

const items = [
  '{"apiVersion":"g/v1","kind":"W","metadata":{"name":"a","managedFields":[{"f:metadata":{"f:labels":{".":{}}}}]},"spec":{"n":9007199254740993,"s":"\\"metadata\\":{}"}}',
  '{ "kind" : "W" , "metadata" : { "name" : "b" } , "spec" : [ 1 , { "metadata" : [ ] } , "]" ] }',
  '{"kind":"W","metadata":{"name":"c"},"status":{"metadata":{"continue":"not-mine"}}}',
];

/** A client that answers every request with the next of `pages`. */
function serving(pages: string[]): KubeClient {
  let n = 0;
  const request = async (_req: KubeRequest) => {
    const text = pages[n++];
    if (text === undefined) throw new Error("no more pages");
    return new KubeResponse(200, Buffer.from(text));
  };
  return { request } as unknown as KubeClient;
}

/** Every item of every page, read the way a snapshot reads them: each scanned once, by the cleaner. */
async function readAll(pages: string[]): Promise<{ names: string[]; bodies: string[]; pages: number }> {
  const outcome = newListOutcome();
  const names: string[] = [];
  const bodies: string[] = [];
  for await (const page of listRawPages(serving(pages), "/apis/g/v1/ws", { pageSize: 2 }, outcome)) {
    for (let at = page.nextItem(); at >= 0;) {
      const cleaned = cleanObjectText(page.bytes, at);
      names.push(cleaned.name);
      bodies.push(page.bytes.toString("utf8", at, cleaned.end));
      at = page.nextItem(cleaned.end);
    }
  }
  return { names, bodies, pages: outcome.pages };
}

describe("reading list pages item by item", () => {
  it("splits kube-apiserver's layout (metadata last) and follows the continue token", async () => {
    const r = await readAll([
      `{"apiVersion":"g/v1","items":[${items[0]},${items[1]}],"kind":"WList","metadata":{"continue":"t1","resourceVersion":"7","remainingItemCount":1}}\n`,
      `{"apiVersion":"g/v1","items":[ ${items[2]} ],"kind":"WList","metadata":{"resourceVersion":"7"}}`,
    ]);
    expect(r.names).toEqual(["a", "b", "c"]);
    expect(r.bodies).toEqual(items);
    expect(r.pages).toBe(2);
  });

  it("splits any other member order, and an empty list", async () => {
    const r = await readAll([
      `{"kind":"WList","apiVersion":"g/v1","metadata":{"continue":"t1"},"items":[${items[0]},${items[2]}]}`,
      `{"apiVersion":"g/v1","items":[],"kind":"WList","metadata":{}}`,
    ]);
    expect(r.names).toEqual(["a", "c"]);
    expect(r.pages).toBe(2);
  });

  it("never takes a nested object's metadata for the list's", async () => {
    // the last "metadata" in the text is an item's: no list metadata, so not a list
    await expect(readAll([`{"apiVersion":"g/v1","items":[${items[2]}]}`])).rejects.toThrow(
      /the answer is not a list/,
    );
  });

  it.each([
    [
      "a missing comma after the items",
      `{"apiVersion":"g/v1","items":[${items[0]}] "kind":"WList","metadata":{}}`,
    ],
    ["text after the list", `{"apiVersion":"g/v1","items":[${items[0]}],"kind":"WList","metadata":{}} x`],
    [
      "a missing comma between items",
      `{"apiVersion":"g/v1","items":[${items[0]} ${items[1]}],"metadata":{}}`,
    ],
    ["an unterminated item", `{"apiVersion":"g/v1","items":[{"metadata":{"name":"a"},"metadata":{}}`],
  ])("refuses a malformed page: %s", async (_what, page) => {
    await expect(readAll([page])).rejects.toThrow(CrdBackupError);
  });
});
