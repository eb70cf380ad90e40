/**
 * The Velero tarball reader on tarballs laid out as Velero's item backupper writes them (each item
 * in the legacy tree and again in the preferred-version tree, `metadata/version`, gzip). The
 * integration test reads backups written by a real Velero.
 */
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ArchiveWriter, readArchive } from "../../../src/archive/index.ts";
import { convertVeleroBackup } from "../../../src/import/velero/convert.ts";
import { parseVeleroPath } from "../../../src/import/velero/layout.ts";
import { drain, expectInvalid, paxRecord, tarMember as plainMember, TAR_END } from "../archive/helpers.ts";

const BIG = "9007199254740993";

/** A member as Go's archive/tar writes it: a pax header with the path when the name is too long for ustar. */
function tarMember(path: string, type: string, body: Buffer): Buffer {
  if (path.length <= 100) return plainMember(path, type, body);
  return Buffer.concat([
    plainMember("PaxHeaders/x", "x", Buffer.from(paxRecord("path", path))),
    plainMember(path.slice(0, 100), type, body),
  ]);
}

function served(kind: string, apiVersion: string, name: string, namespace: string | undefined, rest = "") {
  const ns = namespace ? `"namespace":"${namespace}",` : "";
  return `{"apiVersion":"${apiVersion}","kind":"${kind}","metadata":{"creationTimestamp":"2026-12-01T10:00:00Z","generation":2,"managedFields":[{"manager":"kubectl","operation":"Update"}],"name":"${name}",${ns}"resourceVersion":"4242","uid":"uid-${name}"}${rest}}`;
}

const crd = (plural: string, group: string, kind: string, scope = "Namespaced") =>
  `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"${plural}.${group}","resourceVersion":"1","uid":"uid-crd-${plural}"},"spec":{"group":"${group}","names":{"kind":"${kind}","plural":"${plural}"},"scope":"${scope}","versions":[{"name":"v1alpha1","served":true,"storage":false},{"name":"v1","served":true,"storage":true}]},"status":{"acceptedNames":{"kind":"${kind}"}}}`;

/** A tarball as Velero writes it: every item twice, the legacy path then the preferred one. */
function tarball(
  items: [string, string][],
  options: { version?: string | null; extra?: Buffer[] } = {},
): Buffer {
  const parts: Buffer[] = [];
  const version = options.version === undefined ? "1.1.0\n" : options.version;
  if (version !== null) parts.push(tarMember("metadata/version", "0", Buffer.from(version)));
  for (const [path, body] of items) {
    const [, resource, ...rest] = path.split("/");
    parts.push(tarMember(path, "0", Buffer.from(body)));
    parts.push(
      tarMember(`resources/${resource}/v1-preferredversion/${rest.join("/")}`, "0", Buffer.from(body)),
    );
  }
  parts.push(...(options.extra ?? []), TAR_END);
  return gzipSync(Buffer.concat(parts));
}

const goodItems: [string, string][] = [
  [
    "resources/customresourcedefinitions.apiextensions.k8s.io/cluster/widgets.example.com.json",
    crd("widgets", "example.com", "Widget"),
  ],
  [
    "resources/namespaces/cluster/team-a.json",
    `{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"team":"a"},"name":"team-a","resourceVersion":"7","uid":"uid-ns"},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}`,
  ],
  [
    "resources/widgets.example.com/namespaces/team-a/one.json",
    served("Widget", "example.com/v1", "one", "team-a", `,"spec":{"size":${BIG}},"status":{"ready":true}`),
  ],
  [
    "resources/widgets.example.com/namespaces/team-a/two.json",
    served("Widget", "example.com/v1", "two", "team-a", `,"spec":{"owner":"one"}`).replace(
      '"name":"two"',
      '"name":"two","ownerReferences":[{"apiVersion":"example.com/v1","kind":"Widget","name":"one","uid":"uid-one"}]',
    ),
  ],
  [
    "resources/widgets.example.com/namespaces/team-b/three.json",
    served("Widget", "example.com/v1", "three", "team-b"),
  ],
  ["resources/pods/namespaces/team-a/web-0.json", served("Pod", "v1", "web-0", "team-a")],
  ["resources/pods/namespaces/team-a/web-1.json", served("Pod", "v1", "web-1", "team-a")],
  ["resources/configmaps/namespaces/team-a/cfg.json", served("ConfigMap", "v1", "cfg", "team-a")],
];

async function convert(bytes: Buffer) {
  const writer = new ArchiveWriter("20261201T100000Z-00000001");
  const out = drain(writer.stream);
  const converted = await convertVeleroBackup(writer, "nightly", async () => [bytes]);
  await writer.finish();
  const entries = [];
  for await (const e of readArchive([await out])) entries.push(e);
  return { converted, entries };
}

describe("importing a Velero backup tarball", () => {
  it("takes the CRDs and custom resources once each, cleaned, with their uids, and counts the rest by kind", async () => {
    const { converted, entries } = await convert(tarball(goodItems));
    expect(converted.scan.formatVersion).toBe("1.1.0");
    expect(entries.map((e) => e.name)).toEqual([
      "crd-backup-archive.json",
      "crds/widgets.example.com.json",
      "objects/example.com/v1/widgets/team-a/one.json",
      "objects/example.com/v1/widgets/team-a/two.json",
      "objects/example.com/v1/widgets/team-b/three.json",
      "namespaces/team-a.json",
      "namespaces/team-b.json",
      "index.sha256",
    ]);
    const one = entries[2]!;
    if (one.kind !== "object") throw new Error(one.kind);
    // server-owned fields gone, status and the int64 kept byte for byte, the uid beside the body
    expect(one.body.toString()).toBe(
      `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"one","namespace":"team-a"},"spec":{"size":${BIG}},"status":{"ready":true}}`,
    );
    expect(one.record.uid).toBe("uid-one");
    const two = entries[3]!;
    if (two.kind !== "object") throw new Error(two.kind);
    expect(two.record.ownerUids).toEqual(["uid-one"]);
    const crd = entries[1]!;
    if (crd.kind !== "crd") throw new Error(crd.kind);
    expect(JSON.parse(crd.body.toString())).not.toHaveProperty("status");
    // team-a's Namespace as Velero stored it (labels kept), team-b's bare: the backup did not hold it
    const nsA = entries[5]!;
    if (nsA.kind !== "namespace") throw new Error(nsA.kind);
    expect(JSON.parse(nsA.body.toString())).toMatchObject({
      metadata: { name: "team-a", labels: { team: "a" } },
    });
    expect(Object.fromEntries(converted.skipped)).toEqual({ Pod: 2, ConfigMap: 1 });
    expect(converted.resources).toEqual([
      {
        group: "example.com",
        version: "v1",
        plural: "widgets",
        kind: "Widget",
        namespaced: true,
        storageVersion: "v1",
        servedVersions: ["v1alpha1", "v1"],
        count: 3,
        bytes: expect.any(Number),
        listResourceVersion: "",
        consistent: true,
        errors: [],
      },
    ]);
  });

  it("reads the legacy tree when a resource has no preferred-version tree", async () => {
    const parts = goodItems.map(([p, b]) => tarMember(p, "0", Buffer.from(b)));
    const bytes = gzipSync(
      Buffer.concat([tarMember("metadata/version", "0", Buffer.from("1.0.0\n")), ...parts, TAR_END]),
    );
    const { entries } = await convert(bytes);
    expect(entries.filter((e) => e.kind === "object")).toHaveLength(3);
  });

  it("refuses, in one line naming the backup: a truncated tarball, an unknown format version, a missing one, a path escaping the tree, a link", async () => {
    const good = tarball(goodItems);
    await expectInvalid(
      convert(good.subarray(0, Math.floor(good.length / 2))),
      /^Velero backup "nightly": the tarball is truncated/,
    );
    await expectInvalid(
      convert(tarball(goodItems, { version: "2.0.0\n" })),
      /unknown backup format version "2\.0\.0" in metadata\/version/,
    );
    await expectInvalid(
      convert(tarball(goodItems, { version: null })),
      /not a Velero backup: metadata\/version is missing/,
    );
    await expectInvalid(
      convert(
        tarball(goodItems, { extra: [tarMember("resources/../../etc/passwd.json", "0", Buffer.from("{}"))] }),
      ),
      /tarball entry "resources\/\.\.\/\.\.\/etc\/passwd\.json" is not allowed/,
    );
    await expectInvalid(
      convert(
        tarball(goodItems, {
          extra: [tarMember("resources/widgets.example.com/cluster/evil.json", "2", Buffer.alloc(0))],
        }),
      ),
      /is a symlink entry; only files are read/,
    );
    await expectInvalid(
      convert(Buffer.from("not gzip at all")),
      /^Velero backup "nightly": the tarball is not valid gzip data/,
    );
  });

  it("refuses a custom resource whose body is not a JSON object or names another object than its path", async () => {
    const withItem = (body: string) =>
      tarball([...goodItems, ["resources/widgets.example.com/namespaces/team-a/four.json", body]]);
    await expectInvalid(
      convert(withItem('{"apiVersion":"example.com/v1","metadata":{"name":"four"')),
      /"widgets\.example\.com\/four" is not JSON/,
    );
    await expectInvalid(convert(withItem("[1]")), /"widgets\.example\.com\/four" is not a JSON object/);
    await expectInvalid(
      convert(withItem(served("Widget", "example.com/v1", "five", "team-a"))),
      /"widgets\.example\.com\/four" holds an object named "five"/,
    );
  });

  it("parses every place Velero puts an item, and nothing else", () => {
    expect(parseVeleroPath("b", "resources/widgets.example.com/v1-preferredversion/cluster/w.json")).toEqual({
      kind: "item",
      resource: "widgets.example.com",
      tree: { kind: "preferred", version: "v1" },
      name: "w",
    });
    expect(parseVeleroPath("b", "resources/widgets.example.com/v2/namespaces/ns/w.json")).toMatchObject({
      tree: { kind: "version", version: "v2" },
      namespace: "ns",
    });
    expect(parseVeleroPath("b", "metadata/version")).toEqual({ kind: "version" });
    expect(() => parseVeleroPath("b", "/abs")).toThrow(/absolute/);
    expect(() => parseVeleroPath("b", "resources/pods/namespaces/ns/deep/x.json")).toThrow(
      /not where Velero puts items/,
    );
  });
});
