/**
 * CPU harness for the snapshot pipeline, without a cluster: LIST pages in exactly the API
 * server's format (as bench/seed.ts's objects come back from kube-apiserver, managedFields and
 * all) are replayed through the real takeSnapshot (scan -> clean -> archive writer -> gzip) into a
 * storage backend that discards the bytes. Prints client CPU per object, and per stage.
 *
 *   node bench/pipeline.ts [--crds 20] [--objects-per-crd 1000] [--page-size 500] [--concurrency 4]
 *                          [--rounds 5] [--pages DIR] [--only STAGE] [--profile FILE]
 *
 * --pages DIR replays recorded responses instead (files DIR/<crd>/<n>.json, one LIST page each, in
 * order), as a check that the synthetic pages cost what real ones do.
 * --profile FILE writes a V8 CPU profile of the rounds (with --only, of one stage; open it in
 * Chrome DevTools).
 * --kubeconfig PATH runs the same stages against a live test environment already seeded by
 * bench/seed.ts (--crds and --objects-per-crd must match), plus the benchmark's baseline (raw
 * paginated LIST, bodies discarded), to see what HTTP adds to the in-process costs.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { ArchiveWriter } from "../src/archive/writer.ts";
import { newSnapshotId } from "../src/archive/format.ts";
import { KubeApiError } from "../src/errors.ts";
import { KubeClient, KubeResponse, type KubeRequest } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { collectionPath, CRD_PATH } from "../src/kube/discovery.ts";
import { valueEnd } from "../src/json/scan.ts";
import { listRawPages } from "../src/kube/list.ts";
import { cleanObjectText } from "../src/objects/clean-text.ts";
import { takeSnapshot } from "../src/snapshot/take.ts";
import type { StorageBackend } from "../src/storage/backend.ts";
import { servedBenchObject } from "../fixtures/operators.ts";
import { BENCH_GROUP as GROUP } from "./seed.ts";
import { rawListAll } from "./support.ts";

const { values } = parseArgs({
  options: {
    crds: { type: "string", default: "20" },
    "objects-per-crd": { type: "string", default: "1000" },
    "page-size": { type: "string", default: "500" },
    concurrency: { type: "string", default: "4" },
    rounds: { type: "string", default: "5" },
    pages: { type: "string" },
    only: { type: "string" },
    profile: { type: "string" },
    kubeconfig: { type: "string" },
  },
});
const CRDS = Number(values.crds);
const PER_CRD = Number(values["objects-per-crd"]);
const PAGE = Number(values["page-size"]);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);

const pad = (n: number, width: number) => String(n).padStart(width, "0");
const uid = (n: number) => `b372bb1b-8cd8-4f33-b689-${pad(n, 12)}`;

/** One object as kube-apiserver serves it in a list (the bench snapshot's). */
const servedObject = (plural: string, i: number, rv: number): string =>
  JSON.stringify(servedBenchObject(GROUP, plural, i, rv, uid(rv)));

/** The pages of each collection path, as the bytes the API server sends. */
function synthesize(): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  let rv = 1000;
  for (let c = 0; c < CRDS; c++) {
    const plural = `things${pad(c, 2)}`;
    const pages: Buffer[] = [];
    for (let at = 0; at < PER_CRD; at += PAGE) {
      const n = Math.min(PAGE, PER_CRD - at);
      const items = Array.from({ length: n }, (_, k) => servedObject(plural, at + k, rv++)).join(",");
      const more = at + n < PER_CRD;
      const meta = more
        ? `{"continue":"${Buffer.from(`${plural}/${at + n}`).toString("base64url")}","remainingItemCount":${PER_CRD - at - n},"resourceVersion":"${rv}"}`
        : `{"resourceVersion":"${rv}"}`;
      pages.push(
        Buffer.from(
          `{"apiVersion":"${GROUP}/v1","items":[${items}],"kind":"Thing${pad(c, 2)}List","metadata":${meta}}`,
        ),
      );
    }
    out.set(collectionPath(GROUP, "v1", plural), pages);
  }
  return out;
}

function recorded(dir: string): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  for (const [c, sub] of readdirSync(dir).sort().entries()) {
    const files = readdirSync(join(dir, sub)).sort((a, b) => parseInt(a) - parseInt(b));
    out.set(
      collectionPath(GROUP, "v1", `things${pad(c, 2)}`),
      files.map((f) => readFileSync(join(dir, sub, f))),
    );
  }
  return out;
}

const LIVE = values.kubeconfig;
const collections = LIVE ? new Map<string, Buffer[]>() : values.pages ? recorded(values.pages) : synthesize();
const paths = LIVE
  ? Array.from({ length: CRDS }, (_, c) => collectionPath(GROUP, "v1", `things${pad(c, 2)}`))
  : [...collections.keys()];
const plurals = paths.map((p) => p.split("/").pop()!);
const objects = LIVE
  ? CRDS * PER_CRD
  : [...collections.values()].flat().reduce((n, page) => {
      const text = page.toString("latin1");
      return n + (text.match(/"kind":"Thing\d+"/g)?.length ?? 0);
    }, 0);

/** Each page by the continue token that asks for it. */
const continued = new Map<string, Buffer>();
for (const pages of collections.values()) {
  for (let n = 1; n < pages.length; n++) {
    const tail = pages[n - 1]!.subarray(-600).toString("latin1");
    continued.set(/"continue":"([^"]+)"/.exec(tail)![1]!, pages[n]!);
  }
}

function crdList(): string {
  const items = plurals.map((plural) =>
    JSON.stringify({
      kind: "CustomResourceDefinition",
      apiVersion: "apiextensions.k8s.io/v1",
      metadata: { name: `${plural}.${GROUP}`, uid: uid(plurals.indexOf(plural)), resourceVersion: "1" },
      spec: {
        group: GROUP,
        scope: "Namespaced",
        names: { plural, kind: `Thing${plural.slice(6)}` },
        versions: [
          { name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object" } } },
        ],
      },
      status: { conditions: [{ type: "Established", status: "True" }] },
    }),
  );
  return `{"apiVersion":"apiextensions.k8s.io/v1","items":[${items.join(",")}],"kind":"CustomResourceDefinitionList","metadata":{"resourceVersion":"1"}}`;
}

/**
 * Answers like kube-apiserver, asynchronously (a macrotask per answer, as a socket would), with
 * each answer's bytes as the real client returns them.
 */
function fakeClient(): KubeClient {
  const crds = crdList();
  const answer = async (req: KubeRequest): Promise<KubeResponse> => {
    await new Promise((resolve) => setImmediate(resolve));
    if (req.path === "/version") return new KubeResponse(200, Buffer.from('{"gitVersion":"v1.34.0"}'));
    if (req.path === CRD_PATH) return new KubeResponse(200, Buffer.from(crds));
    const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(req.path);
    if (ns) {
      const body = { kind: "Namespace", apiVersion: "v1", metadata: { name: ns[1], uid: uid(7) } };
      return new KubeResponse(200, Buffer.from(JSON.stringify(body)));
    }
    const pages = collections.get(req.path);
    if (!pages) throw new KubeApiError(404, `GET ${req.path}: 404`, { method: "GET", path: req.path });
    const token = req.query?.["continue"];
    const page = token === undefined ? pages[0]! : continued.get(String(token))!;
    return new KubeResponse(200, page);
  };
  return { server: "https://bench.invalid", request: answer } as unknown as KubeClient;
}

async function discard(body: Readable): Promise<number> {
  let size = 0;
  await pipeline(
    body,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        callback();
      },
    }),
  );
  return size;
}

const storage: StorageBackend = {
  location: "discard://",
  write: async (_key, body) => ({ size: await discard(body) }),
  createExclusive: async () => undefined,
  read: () => Promise.reject(new Error("not readable")),
  stat: async () => undefined,
  list: async function* () {},
  remove: async () => undefined,
  cleanupIncomplete: async () => 0,
};

/** CPU (user + system; all threads, and the main thread's alone) and wall time of `fn`, in µs per object. */
async function measure(fn: () => Promise<unknown>): Promise<Sample> {
  const cpu = process.cpuUsage();
  const main = process.threadCpuUsage();
  const wall = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  const usedMain = process.threadCpuUsage(main);
  return {
    cpu: (used.user + used.system) / objects,
    main: (usedMain.user + usedMain.system) / objects,
    wall: ((performance.now() - wall) * 1000) / objects,
  };
}
interface Sample {
  cpu: number;
  main: number;
  wall: number;
}

const client = LIVE
  ? await KubeClient.create(loadKubeConfig({ kubeconfig: LIVE }), { maxSockets: 32 })
  : fakeClient();
const filters = {
  includeGroups: [GROUP],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};

/** Every object of every page, cleaned as takeSnapshot cleans them: the archive writer's input. */
async function cleanedObjects() {
  const out = [];
  for (const path of paths) {
    const plural = path.split("/").pop()!;
    for await (const page of listRawPages(client, path, { pageSize: PAGE })) {
      for (let at = page.nextItem(); at >= 0;) {
        const cleaned = cleanObjectText(page.bytes, at);
        out.push({ plural, ...cleaned });
        at = page.nextItem(cleaned.end);
      }
    }
  }
  return out;
}

/** Each stage: what to prepare outside the clock, then what is measured. */
const stages: Record<string, () => Promise<() => Promise<unknown>>> = {
  ...(LIVE && {
    "baseline raw LIST": async () => {
      const tls = {
        ca: readFileSync(join(LIVE, "../pki/ca.crt")),
        cert: readFileSync(join(LIVE, "../pki/admin.crt")),
        key: readFileSync(join(LIVE, "../pki/admin.key")),
      };
      return () => rawListAll(client, paths, PAGE, CONCURRENCY, tls);
    },
  }),
  "scan pages": async () => async () => {
    for (const path of paths)
      for await (const page of listRawPages(client, path, { pageSize: PAGE }))
        for (let at = page.nextItem(); at >= 0;) at = page.nextItem(valueEnd(page.bytes, at));
  },
  "scan+clean": async () => async () => {
    for (const path of paths)
      for await (const page of listRawPages(client, path, { pageSize: PAGE }))
        for (let at = page.nextItem(); at >= 0;) at = page.nextItem(cleanObjectText(page.bytes, at).end);
  },
  "archive writer only": async () => {
    const cleaned = await cleanedObjects();
    return async () => {
      const writer = new ArchiveWriter(newSnapshotId(new Date()));
      const consumed = discard(writer.stream);
      for (const c of cleaned) {
        const ref = { group: GROUP, version: "v1", plural: c.plural, namespace: c.namespace, name: c.name };
        await writer.addObject(ref, c.body, { uid: c.uid, fields: c });
      }
      await writer.finish();
      await consumed;
    };
  },
  "takeSnapshot (all)": async () => () =>
    takeSnapshot(client, storage, { filters, pageSize: PAGE, concurrency: CONCURRENCY }),
};

process.stderr.write(
  `pipeline: ${objects} objects (${paths.length} CRDs${LIVE ? ", live" : ""}), page size ${PAGE}, concurrency ${CONCURRENCY}\n`,
);
const results: Record<string, Sample[]> = {};
const profiler = values.profile ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post("Profiler.enable");
  await profiler.post("Profiler.setSamplingInterval", { interval: 100 });
  await profiler.post("Profiler.start");
}
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, prepare] of Object.entries(stages)) {
    if (values.only && !name.startsWith(values.only)) continue;
    const run = await prepare();
    (results[name] ??= []).push(await measure(run));
  }
}
if (profiler) {
  const { profile } = await profiler.post("Profiler.stop");
  writeFileSync(values.profile!, JSON.stringify(profile));
  profiler.disconnect();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (n: number) => n.toFixed(1).padStart(5);
console.log("µs per object: CPU of all threads (median, min-max), of the main thread, wall time");
for (const [name, rs] of Object.entries(results)) {
  const cpus = rs.map((r) => r.cpu);
  console.log(
    `${name.padEnd(20)} CPU ${f(median(cpus))} (${f(Math.min(...cpus))}-${f(Math.max(...cpus))})  main ${f(median(rs.map((r) => r.main)))}  wall ${f(median(rs.map((r) => r.wall)))}`,
  );
}
if (LIVE) client.close();
console.log(
  `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB (harness, pages held in memory)`,
);
