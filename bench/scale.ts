/**
 * Scale run (issue 16): seed N objects, then measure `crd-backup snapshot` (to MinIO) and
 * `crd-backup restore` (into an empty cluster) with DEFAULT flags at each size: wall time,
 * objects/s, peak RSS, and kube-apiserver's CPU. 300,000 objects is where Velero's users report
 * 30 minutes to 6 hours and 3 to 4.5 GiB. Each size gets fresh servers.
 *
 *   node bench/scale.ts [--sizes 50000,300000] [--crds 30] [--restore-max N] [--payload BYTES] [--seed api|etcd]
 *
 * --seed etcd: the objects are written into etcd directly (bench/seed.ts putViaEtcd), minutes
 * instead of most of an hour at a million; the archive is the same (managedFields are not kept).
 * --payload BYTES: filler per object's spec (1700 by default, about 2 KiB an object; 0 gives about
 * 300 bytes, so that 1,000,000 objects fit the test kube-apiserver in this machine's 24 GB).
 *
 * --restore-max N: sizes above N get the snapshot only (a restore of 1,000,000 objects into the
 * 2-core test cluster takes about 40 minutes at the 430 objects/s measured at 300,000).
 *
 * --memory-trace DIR: each run writes CRD_BACKUP_MEMORY_TRACE samples (src/report/memory-trace.ts)
 * to DIR/<command>-<objects>.jsonl, and its row says how the peak splits (V8 heap, external, native).
 * --cli-env 'NAME=VALUE;...': extra environment for the CLI only (a malloc setting, NODE_OPTIONS),
 * to measure an alternative to the shebang's defaults without touching the servers.
 *
 * Targets: peak RSS at 300,000 objects <= 250 MB (snapshot) and <= 300 MB (restore), and no more
 * than 10% above the figure at 50,000.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import https from "node:https";
import { parseArgs } from "node:util";
import { KubeClient } from "../src/kube/client.ts";
import type { MemorySample } from "../src/report/memory-trace.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import {
  startEnvironment,
  stopEnvironment,
  stopServer,
  type EnvironmentInfo,
} from "../test/env/environment.ts";
import { DEFAULT_PAYLOAD, seedBench } from "./seed.ts";
import { timeCli, type Timed } from "./support.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "50000,300000" },
    crds: { type: "string", default: "30" },
    "restore-max": { type: "string", default: String(Number.MAX_SAFE_INTEGER) },
    payload: { type: "string", default: String(DEFAULT_PAYLOAD) },
    seed: { type: "string", default: "api" },
    "memory-trace": { type: "string" },
    "cli-env": { type: "string", default: "" },
  },
});
const SIZES = values.sizes.split(",").map(Number);
const CRDS = Number(values.crds);
const RESTORE_MAX = Number(values["restore-max"]);
const PAYLOAD = Number(values.payload);
if (values.seed !== "api" && values.seed !== "etcd") throw new Error(`--seed ${values.seed}: api or etcd`);
const VIA_ETCD = values.seed === "etcd";
const TRACE_DIR = values["memory-trace"] && path.resolve(values["memory-trace"]);
if (TRACE_DIR) mkdirSync(TRACE_DIR, { recursive: true });
const CLI_ENV = Object.fromEntries(
  values["cli-env"]
    .split(";")
    .filter(Boolean)
    .map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]),
);
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

function serverCpu(env: EnvironmentInfo): number {
  const pid = env.processes.find((p) => p.name === "kube-apiserver")?.pid;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

const cliEnv = (env: EnvironmentInfo, trace?: string): NodeJS.ProcessEnv => ({
  ...process.env,
  ...CLI_ENV,
  ...(trace && { CRD_BACKUP_MEMORY_TRACE: trace }),
  KUBECONFIG: env.kubeconfig,
  AWS_ENDPOINT_URL: env.s3.endpoint,
  AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
  AWS_REGION: env.s3.region,
});

/** The trace's sample at the highest rss, and the highest heapUsed, in MiB: where the peak went. */
function traceSplit(file: string): string {
  const samples = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MemorySample);
  const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
  const mib = (n: number) => (n / 2 ** 20).toFixed(0);
  const maxHeap = Math.max(...samples.map((s) => s.heapUsed));
  return `at peak rss ${mib(peak.rss)} (t ${(peak.t / 1000).toFixed(0)} s): heap used ${mib(peak.heapUsed)} / total ${mib(peak.heapTotal)}, external ${mib(peak.external)} (arrayBuffers ${mib(peak.arrayBuffers)}), V8 malloc ${mib(peak.v8Malloced)}, native ${mib(peak.native)}; max heap used ${mib(maxHeap)}`;
}

/** Runs one timed CLI call and the API server's CPU during it. */
async function measured(
  env: EnvironmentInfo,
  args: string[],
  cpuOf = env,
  name = args[0]!,
  objects = 0,
): Promise<Timed & { serverCpu: number; split?: string }> {
  const trace = TRACE_DIR && path.join(TRACE_DIR, `${name}-${objects}.jsonl`);
  if (trace) rmSync(trace, { force: true });
  const before = serverCpu(cpuOf);
  const res = await timeCli(args, cliEnv(env, trace));
  return { ...res, serverCpu: serverCpu(cpuOf) - before, ...(trace && { split: traceSplit(trace) }) };
}

interface Row {
  objects: number;
  snapshot: Timed & { serverCpu: number; split?: string };
  restore?: Timed & { serverCpu: number; split?: string };
}

const rows: Row[] = [];
for (const size of SIZES) {
  const perCrd = Math.ceil(size / CRDS);
  const objects = perCrd * CRDS;
  // the source holds the bucket the snapshot goes to; the restore reads it from there
  const source = await startEnvironment();
  let target: EnvironmentInfo | undefined;
  try {
    log(
      `seeding ${CRDS} CRDs x ${perCrd} objects (payload ${PAYLOAD} bytes, through ${VIA_ETCD ? "etcd" : "the API"})`,
    );
    const admin = await KubeClient.create(loadKubeConfig({ kubeconfig: source.kubeconfig }), {
      maxSockets: 32,
    });
    await seedBench(admin, CRDS, perCrd, log, PAYLOAD, VIA_ETCD ? { etcdUrl: source.etcdUrl } : {});
    admin.close();
    const storage = `s3://${source.s3.bucket}/scale-${objects}`;
    log(`snapshot of ${objects} objects (default flags)`);
    const snapshot = await measured(
      source,
      ["snapshot", "--storage", storage, "-o", "json", "--log-level", "warn"],
      source,
      "snapshot",
      objects,
    );
    const id = (JSON.parse(snapshot.stdout) as { id: string }).id;
    let restore: Row["restore"];
    if (objects <= RESTORE_MAX) {
      // the restore reads the source's MinIO only: its API server's memory (GBs at a million) goes
      await stopServer(source, "kube-apiserver");
      target = await startEnvironment();
      log(`restore of ${objects} objects into an empty cluster (default flags)`);
      const restoreEnv = { ...source, kubeconfig: target.kubeconfig };
      restore = await measured(
        restoreEnv,
        ["restore", id, "--storage", storage, "-o", "json", "--log-level", "warn"],
        target,
        "restore",
        objects,
      );
      const created = (JSON.parse(restore.stdout) as { counts: { created: number } }).counts.created;
      if (created < objects) throw new Error(`restore created ${created} of ${objects}`);
    }
    rows.push({ objects, snapshot, restore });
    // the whole row as soon as it is known: a larger size that fails later must not lose it
    for (const [name, t] of [
      ["snapshot", snapshot],
      ["restore", restore],
    ] as const)
      log(
        t
          ? `${objects} ${name}: ${t.seconds.toFixed(1)} s, ${(objects / t.seconds).toFixed(0)} objects/s, peak RSS ${t.peakRssMiB.toFixed(0)} MiB, client CPU ${t.cpuSeconds.toFixed(1)} s, kube-apiserver CPU ${t.serverCpu.toFixed(1)} s${t.split ? `; ${t.split}` : ""}`
          : `${objects} ${name}: not run (--restore-max ${RESTORE_MAX})`,
      );
  } finally {
    if (target) await stopEnvironment(target);
    await stopEnvironment(source);
  }
}
https.globalAgent.destroy();

const mb = (mib: number) => mib * 1.048576;
console.log("| objects | command | wall | objects/s | peak RSS | client CPU | kube-apiserver CPU |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  for (const [name, t] of [
    ["snapshot", r.snapshot],
    ["restore", r.restore],
  ] as const) {
    if (!t) continue;
    console.log(
      `| ${r.objects} | ${name} | ${t.seconds.toFixed(1)} s | ${(r.objects / t.seconds).toFixed(0)} | ${mb(t.peakRssMiB).toFixed(0)} MB | ${t.cpuSeconds.toFixed(1)} s | ${t.serverCpu.toFixed(1)} s |`,
    );
  }
}
const smallest = rows[0];
for (const name of ["snapshot", "restore"] as const) {
  const measuredRows = rows.filter((r) => r[name]);
  const largest = measuredRows.at(-1);
  const peak = (r: Row) => r[name]!.peakRssMiB;
  if (largest && largest.objects >= 300_000) {
    const limit = name === "snapshot" ? 250 : 300;
    console.log(
      `${name} peak RSS at ${largest.objects}: ${mb(peak(largest)).toFixed(0)} MB (target <= ${limit} MB) ${mb(peak(largest)) <= limit ? "PASS" : "FAIL"}`,
    );
  }
  if (largest && smallest && largest !== smallest && smallest[name]) {
    const growth = peak(largest) / peak(smallest);
    console.log(
      `${name} RSS growth ${smallest.objects} -> ${largest.objects}: ${((growth - 1) * 100).toFixed(0)}% (target <= 10%) ${growth <= 1.1 ? "PASS" : "FAIL"}`,
    );
  }
}
