import { describe, expect, it } from "vitest";
import { readArchive, type ArchiveEntry } from "../../../src/archive/reader.ts";
import { scannedFields } from "../../../src/archive/reader-fields.ts";
import { objectBody, writeArchive, SNAPSHOT_ID, expectInvalid, crdBody, namespaceBody } from "./helpers.ts";

async function records(bytes: Buffer, reread: boolean): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const e of readArchive([bytes], undefined, { reread }) as AsyncIterable<ArchiveEntry>)
    if (e.kind !== "header" && e.kind !== "index") out.push(e.record);
  return out;
}

describe("a re-read's index fields, scanned instead of parsed", () => {
  it("gives every record a parse gives (owners, uids, escapes, cluster-scoped objects), in both formats", async () => {
    for (const formatVersion of [1, 3] as const) {
      const { bytes } = await writeArchive(
        async (w) => {
          await w.addCrd("widgets.example.com", crdBody("widgets.example.com"));
          const ref = {
            group: "example.com",
            version: "v1",
            plural: "widgets",
            namespace: "team-a",
            name: "one",
          };
          await w.addObject(
            ref,
            objectBody(ref, { spec: { n: JSON.rawJSON("9007199254740993") } }, ["o-1", "o-2"]),
            {
              uid: "uid-one",
            },
          );
          const bare = { group: "example.com", version: "v1", plural: "gadgets", name: "two" };
          await w.addObject(bare, objectBody(bare, { status: { s: '\u00e9"\\' } }));
          await w.addNamespace("team-a", namespaceBody("team-a"));
        },
        SNAPSHOT_ID,
        formatVersion,
      );
      expect(await records(bytes, true)).toEqual(await records(bytes, false));
    }
  });

  it("reads what JSON.parse reads: the last of duplicate keys, escaped keys and values, a metadata that is not an object", () => {
    const body = Buffer.from(
      '{"kind":"A","apiVersion":"x/v1","metadata":{"name":"a","uid":"u1","u\\u0069d":"u2","namespace":"n\\u0073"},"kind":"W"}',
    );
    expect(scannedFields("e", body)).toEqual({
      name: "a",
      uid: "u2",
      apiVersion: "x/v1",
      kind: "W",
      namespace: "ns",
      ownerReferences: undefined,
    });
    expect(scannedFields("e", Buffer.from('{"metadata":"no","kind":1}'))).toEqual({
      name: undefined,
      apiVersion: undefined,
      kind: 1,
    });
  });

  it("refuses a body that is not one JSON object as the archive's fault, naming the entry", async () => {
    await expectInvalid(
      Promise.resolve().then(() => scannedFields("objects/x.json", Buffer.from('{"a":1}{'))),
      /objects\/x\.json.*not valid JSON/,
    );
    await expectInvalid(
      Promise.resolve().then(() => scannedFields("objects/x.json", Buffer.from('{"a":"1}'))),
      /not valid JSON/,
    );
  });
});
