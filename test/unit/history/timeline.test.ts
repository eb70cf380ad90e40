/**
 * objectHistory and changesBetween on a location written with the real writers (no cluster): a
 * base, then a chain with updates, a status-only change, a gap, a delete and a recreate, and a
 * re-list that no longer sees an object; and a second chain whose base lies after a hole.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  changesBetween,
  changesJson,
  changesJsonText,
  historyItemJson,
  indexChain,
  objectHistory,
  openScope,
  RecordIndexes,
  type HistoryItem,
} from "../../../src/history/index.ts";
import type { ResourceInfo } from "../../../src/history/resource.ts";
import type { LocalBackend } from "../../../src/storage/local.ts";
import { at, freshLocation, GROUP, key, widget, writeBase, writeChain } from "./location.ts";

const BASE1 = "20261203T050000Z-00000001";
const BASE2 = "20261203T053000Z-00000002";
const widgets: ResourceInfo = {
  group: GROUP,
  plural: "widgets",
  kind: "Widget",
  namespaced: true,
  version: "v1",
};
const noFilters = {
  includeGroups: [],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};
const rs = (t: Date, phase: "begin" | "end") =>
  ({
    t: t.toISOString(),
    op: "resync",
    phase,
    kind: "object",
    group: GROUP,
    version: "v1",
    plural: "widgets",
    rv: "9",
  }) as const;

async function collect(it: AsyncIterable<HistoryItem>): Promise<string[]> {
  const out: string[] = [];
  for await (const i of it)
    out.push(
      i.type === "gap"
        ? `gap ${i.from.toISOString().slice(14, 19)}-${i.to.toISOString().slice(14, 19)}`
        : `${i.t.toISOString().slice(14, 19)} ${i.what}${i.before ? " (before)" : ""} ${i.paths.join(",")}`.trim(),
    );
  return out;
}

describe("history and changes over a written location", () => {
  let storage: LocalBackend;
  let segments: string[];
  beforeAll(async () => {
    storage = freshLocation();
    await writeBase(
      storage,
      BASE1,
      at("00:01"),
      new Map([
        ["w1", widget("w1", { size: 1 })],
        ["w3", widget("w3", { size: 3 })],
      ]),
    );
    const put = (t: string, name: string, body: Buffer, uid = `uid-${name}`) =>
      ({ t: at(t).toISOString(), op: "put", ...key(name), uid, rv: t, body }) as const;
    segments = await writeChain(storage, BASE1, [
      [
        at("00:01"),
        at("10:00"),
        [
          put("01:00", "w1", widget("w1", { size: 2 })),
          put("02:00", "w2", widget("w2", { size: 1 })),
          put("03:00", "w1", widget("w1", { size: 2 }, { phase: "Ready" })),
          {
            t: at("06:00").toISOString(),
            op: "gap",
            from: at("04:00").toISOString(),
            to: at("06:00").toISOString(),
            reason: "watch expired",
            resources: [`widgets.${GROUP}`],
          },
          { t: at("07:00").toISOString(), op: "delete", ...key("w2"), uid: "uid-w2", rv: "7" },
          put("08:00", "w2", widget("w2", { size: 5 }), "uid-w2b"),
        ],
      ],
      // a re-list that sees w2 only: w1 and w3 were deleted while not watched
      [
        at("10:00"),
        at("20:00"),
        [
          rs(at("12:00"), "begin"),
          put("12:30", "w2", widget("w2", { size: 5 }), "uid-w2b"),
          rs(at("13:00"), "end"),
        ],
      ],
    ]);
    // a second chain after a hole: its base holds w1 again
    await writeBase(storage, BASE2, at("30:00"), new Map([["w1", widget("w1", { size: 9 })]]));
    await writeChain(storage, BASE2, [[at("30:00"), at("40:00"), []]]);
  });

  it("lists each version with what happened and the paths, the gaps between them, across chains", async () => {
    const scope = await openScope(storage, { until: at("59:00") });
    expect(
      await collect(objectHistory(storage, scope, { resource: widgets, namespace: "a", name: "w1" })),
    ).toEqual([
      "00:01 in-base",
      "01:00 updated .spec.size",
      "03:00 status-only .status",
      "gap 04:00-06:00",
      "13:00 deleted",
      "gap 20:00-30:00",
      "30:00 in-base",
    ]);
    expect(
      await collect(objectHistory(storage, scope, { resource: widgets, namespace: "a", name: "w2" })),
    ).toEqual([
      "02:00 created",
      "gap 04:00-06:00",
      "07:00 deleted",
      "08:00 recreated",
      "gap 20:00-30:00",
      "30:00 deleted",
    ]);
  });

  it("starts with the version in effect at --since, and stops at --until", async () => {
    const scope = await openScope(storage, { since: at("02:30"), until: at("12:00") });
    expect(
      await collect(objectHistory(storage, scope, { resource: widgets, namespace: "a", name: "w1" })),
    ).toEqual(["01:00 updated (before) .spec.size", "03:00 status-only .status", "gap 04:00-06:00"]);
  });

  it("gives each version's object in its JSON, int64-safe, null once deleted", async () => {
    const scope = await openScope(storage, { since: at("06:30"), until: at("09:00") });
    const items: HistoryItem[] = [];
    for await (const i of objectHistory(storage, scope, { resource: widgets, namespace: "a", name: "w2" }))
      items.push(i);
    const json = items.map(historyItemJson);
    expect(json.map((j) => [j["what"], j["object"] === null])).toEqual([
      ["created", false],
      ["deleted", true],
      ["recreated", false],
    ]);
    expect(json[0]!["before"]).toBe(true);
    expect(JSON.stringify(json[2]!["object"])).toContain('"size":5');
    expect(json[2]!["source"]).toEqual({ segment: segments[0] });
  });

  it("a name never recorded is NOT_FOUND, before anything is yielded", async () => {
    const scope = await openScope(storage, { until: at("59:00") });
    await expect(
      collect(objectHistory(storage, scope, { resource: widgets, namespace: "a", name: "nope" })),
    ).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("a window outside everything recorded is a usage error naming the windows", async () => {
    await expect(openScope(storage, { since: at("45:00"), until: at("50:00") })).rejects.toThrow(
      /is outside everything recorded of cluster unit-cluster \(journal windows: 2026-12-03T05:00:01.000Z .. 2026-12-03T05:04:00.000Z/,
    );
  });

  it("changes: by state at --since against --until, with events and paths", async () => {
    const scope = await openScope(storage, { since: at("01:30"), until: at("09:00") });
    const s = await changesBetween(storage, scope, noFilters);
    expect(s.totals).toEqual({ created: 1, updated: 1, deleted: 0, recreated: 0, transient: 0 });
    expect(s.groups).toEqual([
      {
        resource: `widgets.${GROUP}`,
        namespace: "a",
        counts: { created: 1, updated: 1, deleted: 0, recreated: 0, transient: 0 },
        objects: [
          { name: "w1", change: "updated", statusOnly: true, events: 1, paths: [".status"] },
          { name: "w2", change: "created", statusOnly: false, events: 3, paths: [] },
        ],
      },
    ]);
    expect(s.gaps.map((g) => g.reason)).toEqual(["watch expired"]);
    // written a group at a time, the same text as the value written whole
    for (const summary of [s, { ...s, groups: [] }])
      expect([...changesJsonText(summary)].join("")).toBe(
        `${JSON.stringify(changesJson(summary), null, 2)}\n`,
      );
    const deleted = await changesBetween(
      storage,
      await openScope(storage, { since: at("06:30"), until: at("09:00") }),
      noFilters,
    );
    expect(deleted.groups[0]!.objects).toEqual([
      { name: "w2", change: "recreated", statusOnly: false, events: 2, paths: [] },
    ]);
    const none = await changesBetween(storage, scope, { ...noFilters, selector: "app=w1" });
    expect(none.groups[0]!.objects.map((o) => o.name)).toEqual(["w1"]);
  });

  it("through the web view's record indexes: the same versions, objects and sources", async () => {
    const scope = await openScope(storage, { until: at("59:00") });
    const indexes = new RecordIndexes();
    for (const s of scope.sources) if (s.type === "chain") await indexChain(storage, s.chain, indexes);
    expect(indexes.has(segments[0]!)).toBe(true);
    const json = async (name: string, withIndexes?: RecordIndexes) => {
      const out: unknown[] = [];
      const object = { resource: widgets, namespace: "a", name };
      for await (const i of objectHistory(storage, scope, object, undefined, undefined, withIndexes))
        out.push(historyItemJson(i));
      return JSON.stringify(out);
    };
    for (const name of ["w1", "w2", "w3"]) expect(await json(name, indexes)).toBe(await json(name));
  });

  it("a segment altered after it was indexed is refused, whether or not it holds the object", async () => {
    const copy = freshLocation();
    await writeBase(copy, BASE1, at("00:01"), new Map([["w1", widget("w1", { size: 1 })]]));
    const put = { t: at("01:00").toISOString(), op: "put", ...key("w1"), uid: "u", rv: "1" } as const;
    const [seg] = await writeChain(copy, BASE1, [
      [at("00:01"), at("10:00"), [{ ...put, body: widget("w1", { size: 2 }) }]],
    ]);
    const scope = await openScope(copy, { until: at("59:00") });
    const indexes = new RecordIndexes();
    for (const s of scope.sources) if (s.type === "chain") await indexChain(copy, s.chain, indexes);
    const file = path.join(copy.location.replace(/^file:\/\//, ""), seg!);
    const bytes = await readFile(file);
    bytes[bytes.length - 12]! ^= 1; // same size, one bit
    await writeFile(file, bytes);
    for (const name of ["w1", "w9"])
      await expect(
        collect(
          objectHistory(
            copy,
            scope,
            { resource: widgets, namespace: "a", name },
            undefined,
            undefined,
            indexes,
          ),
        ),
      ).rejects.toMatchObject({ code: "ARCHIVE_INVALID", message: expect.stringContaining(seg!) });
  });

  it("a chain broken by a missing segment reads up to the break and refuses a window past it", async () => {
    const copy = freshLocation();
    await writeBase(copy, BASE1, at("00:01"), new Map([["w1", widget("w1", { size: 1 })]]));
    const put = (t: string, size: number) =>
      ({
        t: at(t).toISOString(),
        op: "put",
        ...key("w1"),
        uid: "uid-w1",
        rv: t,
        body: widget("w1", { size }),
      }) as const;
    const segs = await writeChain(copy, BASE1, [
      [at("00:01"), at("10:00"), [put("01:00", 2)]],
      [at("10:00"), at("20:00"), [put("11:00", 3)]],
      [at("20:00"), at("30:00"), [put("21:00", 4)]],
    ]);
    await rm(path.join(copy.location.replace(/^file:\/\//, ""), segs[1]!));
    const history = async (until: string) =>
      collect(
        objectHistory(copy, await openScope(copy, { until: at(until) }), {
          resource: widgets,
          namespace: "a",
          name: "w1",
        }),
      );
    expect(await history("09:00")).toEqual(["00:01 in-base", "01:00 updated .spec.size"]);
    await expect(history("25:00")).rejects.toMatchObject({
      code: "ARCHIVE_INVALID",
      message: expect.stringContaining(segs[2]!),
    });
    // the web view indexes what a reader may read: the segments before the break
    const indexes = new RecordIndexes();
    const scope = await openScope(copy, { until: at("09:00") });
    let indexed = 0;
    for (const s of scope.sources)
      if (s.type === "chain") indexed += await indexChain(copy, s.chain, indexes);
    expect(indexed).toBe(1);
  });

  it("a tampered segment is refused, naming it, as for --at", async () => {
    const copy = freshLocation();
    await writeBase(copy, BASE1, at("00:01"), new Map([["w1", widget("w1", { size: 1 })]]));
    const [seg] = await writeChain(copy, BASE1, [
      [
        at("00:01"),
        at("10:00"),
        [
          {
            t: at("01:00").toISOString(),
            op: "put",
            ...key("w1"),
            uid: "u",
            rv: "1",
            body: widget("w1", { size: 2 }),
          },
        ],
      ],
    ]);
    await writeFile(path.join(copy.location.replace(/^file:\/\//, ""), seg!), "not a segment");
    const scope = await openScope(copy, { until: at("59:00") });
    await expect(
      collect(objectHistory(copy, scope, { resource: widgets, namespace: "a", name: "w1" })),
    ).rejects.toMatchObject({
      code: "ARCHIVE_INVALID",
      message: expect.stringContaining(`journal segment ${seg}`),
    });
  });
});
