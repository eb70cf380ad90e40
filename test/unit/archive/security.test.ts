/**
 * Archives are untrusted input. Every case here must be refused with ARCHIVE_INVALID and a one-line
 * message naming what is wrong, before any consumer could act on the offending entry.
 */
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readArchive, verifyArchive, type ArchiveTotals } from "../../../src/archive/index.ts";
import {
  SNAPSHOT_ID,
  crdBody,
  expectInvalid,
  namespaceBody,
  objectBody,
  pack,
  paxBomb,
  paxRecord,
  reindex,
  sha256,
  smallArchive,
  TAR_END,
  tarMember,
  unpack,
  type RawEntry,
} from "./helpers.ts";

const HEADER = `{"format":"crd-backup-archive","formatVersion":1,"snapshotId":"${SNAPSHOT_ID}"}`;
const header = (body = HEADER): RawEntry => ({ name: "crd-backup-archive.json", body: Buffer.from(body) });
const widget = { group: "example.com", version: "v1", plural: "widgets", namespace: "ns" };

const expectation = (totals: ArchiveTotals) => ({ snapshotId: SNAPSHOT_ID, ...totals });

/** Re-pack a valid archive's entries after `change`, keeping every pax record consistent. */
async function tampered(change: (entries: RawEntry[]) => void): Promise<Buffer> {
  const entries = await unpack((await smallArchive()).bytes);
  change(entries);
  return pack(entries.map((e) => ({ ...e, pax: { ...e.pax, "CRDBACKUP.sha256": sha256(e.body) } })));
}

const verify = (bytes: Buffer, totals?: ArchiveTotals) =>
  verifyArchive([bytes], totals ? expectation(totals) : undefined);

describe("untrusted archives", () => {
  it("accepts the untampered archive (the baseline for every case below)", async () => {
    const { bytes, totals } = await smallArchive();
    await expect(verify(bytes, totals)).resolves.toMatchObject({ objects: 2 });
    await expect(verify(await tampered(() => undefined))).resolves.toMatchObject({ objects: 2 });
  });

  describe("bytes that are not a valid .tar.gz", () => {
    it("refuses corrupt gzip data", async () => {
      const { bytes, totals } = await smallArchive();
      const corrupt = Buffer.from(bytes);
      for (let i = 40; i < 60; i++) corrupt[i] = corrupt[i]! ^ 0x5a;
      await expectInvalid(verify(corrupt), /archive/);
      await expectInvalid(verify(corrupt, totals), /archive/);
    });

    it("refuses a truncated archive, wherever it is cut", async () => {
      const { bytes } = await smallArchive();
      for (const length of [10, 100, Math.floor(bytes.length / 2), bytes.length - 4]) {
        await expectInvalid(verify(bytes.subarray(0, length)), /truncated/);
      }
    });

    it("refuses empty input, data that is not gzip, and gzip data that is not tar", async () => {
      await expectInvalid(verify(Buffer.alloc(0)), /archive is empty/);
      await expectInvalid(
        verify(Buffer.from("just some text, not gzip")),
        /neither gzip \(format version 1\) nor zstd/,
      );
      await expectInvalid(
        verify(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02])),
        /not valid gzip data|truncated/,
      );
      await expectInvalid(
        verify(gzipSync(Buffer.alloc(4096, 0x41))),
        /not a valid tar stream: bad tar header/,
      );
      const { bytes } = await smallArchive();
      await expectInvalid(verify(Buffer.concat([bytes, Buffer.from("trailing garbage")])), /archive/);
    });

    it("refuses an archive whose sha256 or size differs from the manifest's", async () => {
      const { bytes, totals } = await smallArchive();
      await expectInvalid(
        verify(bytes, { ...totals, sha256: "0".repeat(64) }),
        /sha256 is [0-9a-f]{64}, the manifest says 0{64}/,
      );
      await expectInvalid(
        verify(bytes, { ...totals, size: totals.size + 1 }),
        /size is \d+, the manifest says/,
      );
      await expectInvalid(verify(bytes, { ...totals, indexEntries: 5 }), /number of index lines is 4/);
      await expectInvalid(
        verifyArchive([bytes], { ...expectation(totals), snapshotId: "20270101T000000Z-00000000" }),
        /belongs to snapshot 20261122T041500Z-1a2b3c4d, not 20270101T000000Z-00000000/,
      );
    });

    it("catches a body re-hashed everywhere inside the archive by the manifest's sha256", async () => {
      const { totals } = await smallArchive();
      // A consistent forgery: body, pax record and index line all changed together.
      const forged = await tampered((entries) => {
        const target = entries.find((e) => e.name.endsWith("/one.json"))!;
        target.body = Buffer.from(target.body.toString().replace('"Widget"', '"Wodget"'));
        reindex(entries);
      });
      await expect(verify(forged)).resolves.toMatchObject({ objects: 2 }); // internally consistent...
      await expectInvalid(verify(forged, totals), /the manifest says/); // ...but not the archive the manifest names
    });
  });

  describe("entries that are not allowed", () => {
    const cases: [string, RawEntry, RegExp][] = [
      [
        "a path that climbs out",
        { name: "../x", body: Buffer.from("{}") },
        /"\.\.\/x" is not allowed: the name contains "\.\."/,
      ],
      [
        "an absolute path",
        { name: "/etc/passwd", body: Buffer.from("{}") },
        /"\/etc\/passwd" is not allowed: the name is an absolute path/,
      ],
      [
        "a symlink",
        { name: "crds/x.example.com.json", body: Buffer.alloc(0), type: "symlink", linkname: "/etc/passwd" },
        /is a symlink entry; only regular files/,
      ],
      [
        "a hard link",
        {
          name: "crds/x.example.com.json",
          body: Buffer.alloc(0),
          type: "link",
          linkname: "crd-backup-archive.json",
        },
        /is a link entry/,
      ],
      ["a directory", { name: "crds", body: Buffer.alloc(0), type: "directory" }, /grammar|directory/],
      [
        "a NUL byte in a pax path",
        { name: "crds/a\u0000b.json", body: Buffer.from("{}") },
        /control character/,
      ],
      [
        "a name outside the grammar",
        { name: "notes.txt", body: Buffer.from("hi") },
        /does not match the archive entry grammar/,
      ],
    ];
    it.each(cases)("refuses %s", async (_what, entry, pattern) => {
      await expectInvalid(verify(await pack([header(), entry])), pattern);
    });

    it("refuses an entry larger than 16 MiB before reading its body", async () => {
      const body = Buffer.alloc(16 * 1024 * 1024 + 1, 0x20);
      await expectInvalid(
        verify(await pack([header(), { name: "crds/big.example.com.json", body }])),
        /more than the limit of 16777216/,
      );
    });
  });

  describe("a valid tar that is not a (supported) crd-backup archive", () => {
    it("refuses a tar whose first entry is not the header", async () => {
      const plain = await pack([{ name: "hello.txt", body: Buffer.from("hello"), pax: null }]);
      await expectInvalid(
        verify(plain),
        /^not a crd-backup archive: the first entry is "hello\.txt", not "crd-backup-archive\.json"$/,
      );
      const late = await pack([
        { name: "crds/x.example.com.json", body: crdBody("x.example.com") },
        header(),
      ]);
      await expectInvalid(verify(late), /not a crd-backup archive/);
    });

    it("refuses an unknown format version, and a header of another format", async () => {
      const v7 = HEADER.replace('"formatVersion":1', '"formatVersion":7');
      await expectInvalid(
        verify(await pack([header(v7)])),
        /^snapshot 20261122T041500Z-1a2b3c4d: archive format version 7 is newer than this crd-backup understands \(3\); upgrade crd-backup$/,
      );
      await expectInvalid(
        verify(await pack([header(HEADER.replace('"formatVersion":1', '"formatVersion":0'))])),
        /unsupported archive format version 0/,
      );
      await expectInvalid(
        verify(await pack([header(HEADER.replace("crd-backup-archive", "other"))])),
        /not a crd-backup archive/,
      );
    });
  });

  describe("entries that do not match their records", () => {
    it("refuses a body whose sha256 differs from its pax record", async () => {
      const body = crdBody("x.example.com");
      const entry = {
        name: "crds/x.example.com.json",
        body,
        pax: { "CRDBACKUP.sha256": sha256("something else") },
      };
      await expectInvalid(
        verify(await pack([header(), entry])),
        /^archive entry "crds\/x\.example\.com\.json": the body does not match its CRDBACKUP\.sha256 record$/,
      );
      // The same with the pax record intact and the body changed in a valid archive.
      const entries = await unpack((await smallArchive()).bytes);
      const two = entries.find((e) => e.name.endsWith("/two.json"))!;
      two.body = Buffer.from(two.body.toString().replace('"Widget"', '"Wodget"'));
      await expectInvalid(
        verify(await pack(entries)),
        /two\.json": the body does not match its CRDBACKUP\.sha256 record/,
      );
    });

    it("refuses an entry without a sha256 record", async () => {
      await expectInvalid(
        verify(
          await pack([
            header(),
            { name: "crds/x.example.com.json", body: crdBody("x.example.com"), pax: null },
          ]),
        ),
        /has no valid CRDBACKUP\.sha256 record/,
      );
      await expectInvalid(
        verify(await pack([{ ...header(), pax: null }])),
        /crd-backup-archive\.json": has no valid CRDBACKUP\.sha256/,
      );
    });

    it("refuses an index.jsonl that does not match the entries", async () => {
      const edited = await tampered((entries) => {
        const index = entries.find((e) => e.name === "index.jsonl")!;
        index.body = Buffer.from(index.body.toString().replace('"uid":"uid-one"', '"uid":"uid-evil"'));
      });
      await expectInvalid(verify(edited), /"index\.jsonl": does not match the entries of the archive/);

      const shortened = await tampered((entries) => {
        const index = entries.find((e) => e.name === "index.jsonl")!;
        index.body = Buffer.from(index.body.toString().split("\n").slice(1).join("\n"));
      });
      await expectInvalid(verify(shortened), /"index\.jsonl": lists 3 entries but the archive has 4/);

      const missing = await tampered((entries) => entries.pop());
      await expectInvalid(verify(missing), /index\.jsonl is missing/);
    });

    it("refuses a body that does not agree with its name", async () => {
      const cases: [RawEntry, RegExp][] = [
        [
          { name: "crds/x.example.com.json", body: crdBody("y.example.com") },
          /metadata\.name is "y\.example\.com", expected "x\.example\.com"/,
        ],
        [
          { name: "namespaces/ns.json", body: Buffer.from(`${namespaceBody("ns").toString()}\n`) },
          /not a single JSON object/,
        ],
        [{ name: "namespaces/ns.json", body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }, /not valid UTF-8/],
        [
          {
            name: "objects/example.com/v1/widgets/ns/a.json",
            body: objectBody({ ...widget, name: "a", namespace: "other" }),
          },
          /metadata\.namespace is "other", expected "ns"/,
        ],
        [
          { name: "objects/example.com/v2/widgets/ns/a.json", body: objectBody({ ...widget, name: "a" }) },
          /apiVersion is "example\.com\/v1", expected "example\.com\/v2"/,
        ],
      ];
      for (const [entry, pattern] of cases)
        await expectInvalid(verify(await pack([header(), entry])), pattern);
    });

    it("refuses a uid record that is not a uid", async () => {
      const entry = { name: "crds/x.example.com.json", body: crdBody("x.example.com") };
      const pax = { "CRDBACKUP.sha256": sha256(entry.body), "CRDBACKUP.uid": "../../x y" };
      await expectInvalid(verify(await pack([header(), { ...entry, pax }])), /invalid CRDBACKUP\.uid record/);
    });
  });

  describe("entries out of order", () => {
    const crd = (name: string): RawEntry => ({ name: `crds/${name}.json`, body: crdBody(name) });
    const ns = (name: string): RawEntry => ({ name: `namespaces/${name}.json`, body: namespaceBody(name) });
    const obj = (plural: string, name: string): RawEntry => ({
      name: `objects/example.com/v1/${plural}/ns/${name}.json`,
      body: objectBody({ ...widget, plural, name }),
    });
    const cases: [string, RawEntry[], RegExp][] = [
      [
        "a CRD after an object",
        [obj("widgets", "a"), crd("x.example.com")],
        /crd entries must come before object entries/,
      ],
      [
        "an object after a namespace",
        [ns("ns"), obj("widgets", "a")],
        /object entries must come before namespace entries/,
      ],
      ["the same CRD twice", [crd("x.example.com"), crd("x.example.com")], /already in the archive/],
      ["a second header", [crd("x.example.com"), header()], /the header entry may appear only once/],
    ];
    it.each(cases)("refuses %s", async (_what, entries, pattern) => {
      await expectInvalid(verify(await pack([header(), ...entries])), pattern);
    });

    it("refuses anything after index.jsonl", async () => {
      const bytes = await tampered((entries) => entries.push(ns("late")));
      await expectInvalid(
        verify(bytes),
        /"namespaces\/late\.json" is out of order: nothing may follow index\.jsonl/,
      );
    });
  });

  describe("pax headers (issue 21: the pax-header bomb)", () => {
    const HEADER_BODY = Buffer.from(HEADER);
    const headerPax = (extra = "") =>
      paxRecord("path", "crd-backup-archive.json") +
      paxRecord("CRDBACKUP.sha256", sha256(HEADER_BODY)) +
      extra;
    const raw = (...members: Buffer[]) => gzipSync(Buffer.concat([...members, TAR_END]));
    const paxMember = (records: string) => tarMember("PaxHeader", "x", Buffer.from(records));
    const headerMember = () => tarMember("crd-backup-archive.json", "0", HEADER_BODY);

    /** Time and heap growth (sampled while it runs) of refusing `bytes`. */
    async function refusal(bytes: Buffer, pattern: RegExp) {
      const heapBefore = process.memoryUsage().heapUsed;
      let peak = heapBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
      const started = performance.now();
      try {
        await expectInvalid(verify(bytes), pattern);
      } finally {
        clearInterval(sampler);
      }
      const ms = performance.now() - started;
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      return { ms, heapGrowthMB: (peak - heapBefore) / 2 ** 20 };
    }

    it("refuses 150 pax headers of 64 KiB in a row (1.9 MB gzipped) in under 2 s and 50 MB", async () => {
      const bomb = paxBomb(150, 64 * 1024 - 32);
      expect(bomb.length).toBeGreaterThan(1_000_000);
      const { ms, heapGrowthMB } = await refusal(
        bomb,
        /^archive is not a valid tar stream: a pax extended header/,
      );
      expect(ms).toBeLessThan(2000);
      expect(heapGrowthMB).toBeLessThan(50);
    }, 30_000);

    it("refuses a pax header that follows a pax header, even when each is within the size limit", async () => {
      const { ms, heapGrowthMB } = await refusal(
        paxBomb(150, 8 * 1024 - 32),
        /^archive is not a valid tar stream: a pax extended header follows another one; only one is allowed per entry$/,
      );
      expect(ms).toBeLessThan(2000);
      expect(heapGrowthMB).toBeLessThan(50);
      // the smallest case, after a valid entry: the message names where
      await expectInvalid(
        verify(
          raw(paxMember(headerPax()), headerMember(), paxMember(""), paxMember(headerPax()), headerMember()),
        ),
        /^archive is not a valid tar stream after entry "crd-backup-archive\.json": a pax extended header follows another one/,
      );
    }, 30_000);

    it("refuses a pax header larger than 8 KiB before reading it", async () => {
      const big = paxMember(headerPax(paxRecord("comment", "x".repeat(8 * 1024))));
      await expectInvalid(
        verify(raw(big, headerMember())),
        /a pax extended header of \d+ bytes is over the limit of 8192/,
      );
      // a full-size path (1024 bytes) and uid still fit, with room to spare
      const path = paxRecord("path", "x".repeat(1024));
      expect(path.length + headerPax(paxRecord("CRDBACKUP.uid", "u".repeat(128))).length).toBeLessThan(4096);
    });

    it("refuses a pax global header ('g')", async () => {
      for (const members of [
        [
          tarMember("pax_global_header", "g", Buffer.from(paxRecord("comment", "hi"))),
          paxMember(headerPax()),
          headerMember(),
        ],
        [paxMember(headerPax()), headerMember(), tarMember("pax_global_header", "g", Buffer.alloc(0))],
      ])
        await expectInvalid(verify(raw(...members)), /a pax global header \(typeflag 'g'\) is not allowed/);
    });

    it("refuses a pax header that no entry follows", async () => {
      await expectInvalid(
        verify(raw(paxMember(headerPax()), headerMember(), paxMember(headerPax()))),
        /after entry "crd-backup-archive\.json": a pax extended header is not followed by an entry/,
      );
    });
  });

  it("stops yielding at the bad entry: nothing after it reaches the consumer", async () => {
    const bytes = await pack([header(), ns("a"), { name: "../escape", body: Buffer.from("{}") }, ns("b")]);
    const seen: string[] = [];
    await expectInvalid(
      (async () => {
        for await (const entry of readArchive([bytes])) seen.push(entry.name);
      })(),
      /escape/,
    );
    expect(seen).toEqual(["crd-backup-archive.json", "namespaces/a.json"]);
  });
});

function ns(name: string): RawEntry {
  return { name: `namespaces/${name}.json`, body: namespaceBody(name) };
}
