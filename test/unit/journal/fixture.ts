/** The place (cluster, chain, window) and the records of the journal unit tests' segments. */
import type { JournalRecord } from "../../../src/journal/segment-format.ts";

export const place = {
  cluster: "c",
  base: "20261203T050000Z-00000001",
  seq: 1,
  prev: null,
  from: new Date("2026-12-03T05:00:00Z"),
  to: new Date("2026-12-03T05:10:00Z"),
};

/** A put of widget `name` in namespace a of g.io. */
export const widgetPut = (name: string, t: string, rv: string, body: Buffer): JournalRecord => ({
  t,
  op: "put",
  kind: "object",
  group: "g.io",
  version: "v1",
  plural: "widgets",
  namespace: "a",
  name,
  uid: "u",
  rv,
  body,
});
