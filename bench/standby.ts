/**
 * Standby benchmark (issue 24): a steady change rate (default 200/s, the recorder benchmark's
 * load on the 2-core test cluster) on cluster A while `crd-backup record` journals it to MinIO
 * and `crd-backup standby` follows the journal into cluster B, both with their default flags
 * unless told. Prints the lag per change, from its record time (the recorder's receipt) to the
 * end of the standby step that applied it (p50, p99, max), the steps' kinds and durations, and
 * whether B equals A at the end. Target (issue 24): p99 at most the flush interval plus 2 s.
 *
 *   node bench/standby.ts [--rate 200] [--seconds 60] [--objects 1000] [--poll 1s] [--flush-interval 5s]
 *                         [--standby-concurrency 8] [--cpu-prof DIR]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI_MAIN, cliNodeFlags } from "../cli/node-flags.ts";
import { KubeClient } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { parseSegmentKey, segmentKey } from "../src/journal/segment-key.ts";
import type { JournalRecord, SegmentTrailer } from "../src/journal/segment-format.ts";
import { readSegment } from "../src/journal/segment-reader.ts";
import { S3Backend } from "../src/storage/s3.ts";
import { startEnvironment, stopEnvironment, type EnvironmentInfo } from "../test/env/environment.ts";
import { liveState } from "../test/support/compare.ts";
import { BENCH_GROUP, patchAtRate, seedBench } from "./seed.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "60" },
    objects: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "16" },
    poll: { type: "string" },
    "standby-concurrency": { type: "string" },
    "flush-interval": { type: "string" },
    /** A directory for a CPU profile of the standby process (node --cpu-prof). */
    "cpu-prof": { type: "string" },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const OBJECTS = Number(values.objects);
const CONCURRENCY = Number(values.concurrency);
const CRDS = 5;
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

interface Line {
  time: string;
  msg: string;
  [k: string]: unknown;
}

function start(
  env: EnvironmentInfo,
  args: string[],
  onLine: (l: Line) => void,
  nodeFlags: string[] = [],
): ChildProcess {
  const child = spawn(process.execPath, [...cliNodeFlags(), ...nodeFlags, CLI_MAIN, ...args], {
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "/tmp",
      KUBECONFIG: env.kubeconfig,
      AWS_ENDPOINT_URL: env.s3.endpoint,
      AWS_ACCESS_KEY_ID: env.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey,
      AWS_REGION: env.s3.region,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let buffered = "";
  child.stderr!.on("data", (c: Buffer) => {
    buffered += c.toString();
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith("{")) onLine(JSON.parse(line) as Line);
    }
  });
  return child;
}

const [a, b] = await Promise.all([startEnvironment(), startEnvironment()]);
try {
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: a.kubeconfig }), {
    maxSockets: CONCURRENCY,
  });
  const target = await KubeClient.create(loadKubeConfig({ kubeconfig: b.kubeconfig }));
  log(`seeding ${CRDS} CRDs x ${OBJECTS / CRDS} objects on A`);
  const plurals = await seedBench(client, CRDS, OBJECTS / CRDS, log);
  const location = `s3://${a.s3.bucket}/bench-standby-${Date.now()}`;

  let following = false;
  const recorder = start(
    a,
    [
      "record",
      "--storage",
      location,
      "--include-groups",
      BENCH_GROUP,
      ...(values["flush-interval"] ? ["--flush-interval", values["flush-interval"]] : []),
    ],
    (l) => {
      if (l.msg === "following every resource") following = true;
      if (l.msg.startsWith("gap")) log(`recorder: ${JSON.stringify(l)}`);
    },
  );
  while (!following) await sleep(200);

  /** Each step the standby logged: its last segment's seq, when it ended, what it was. */
  const steps: {
    seq: number;
    at: number;
    step: string;
    state: string;
    seconds: number;
    applied: number;
    phases: Record<string, number>;
  }[] = [];
  const standby = start(
    a,
    [
      "standby",
      "--storage",
      location,
      "--target-kubeconfig",
      b.kubeconfig,
      "--include-groups",
      BENCH_GROUP,
      ...(values.poll ? ["--poll", values.poll] : []),
      ...(values["standby-concurrency"] ? ["--concurrency", values["standby-concurrency"]] : []),
    ],
    (l) => {
      if (l.msg === "standby applied")
        steps.push({
          seq: parseSegmentKey(String(l["segment"]))!.seq,
          at: Date.parse(l.time),
          step: String(l["step"]),
          state: String(l["state"]),
          seconds: Number(l["stepSeconds"]),
          applied: Number(l["applied"]),
          phases: Object.fromEntries(
            ["read", "state", "plan", "write"].map((p) => [p, Number(l[`${p}Seconds`] ?? 0)]),
          ),
        });
      else if (l.msg.includes("failed") || l.msg.includes("refused")) log(`standby: ${JSON.stringify(l)}`);
    },
    values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", values["cpu-prof"]] : [],
  );
  while (steps.length === 0) await sleep(200);
  log(`standby synced (${steps[0]!.step}); ${RATE} changes/s for ${SECONDS} s on A`);

  const w = await patchAtRate(client, plurals, OBJECTS, {
    rate: RATE,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
  });
  log(
    `writes: ${w.sent - w.failed} in ${w.seconds.toFixed(1)} s = ${((w.sent - w.failed) / w.seconds).toFixed(0)}/s (${w.failed} failed)`,
  );

  // B equals A once the last changes are followed
  const resources = plurals.map((p) => [p, "v1"] as [string, string]);
  const equal = async () => {
    const [sa, sb] = await Promise.all([
      liveState(client, BENCH_GROUP, resources, { withStatus: true }),
      liveState(target, BENCH_GROUP, resources, { withStatus: true }),
    ]);
    return JSON.stringify([...sa.forms].sort()) === JSON.stringify([...sb.forms].sort());
  };
  const settle = performance.now();
  let same = false;
  while (!(same = await equal()) && performance.now() - settle < 60_000) await sleep(500);
  log(
    `B ${same ? "equals" : "does NOT equal"} A ${((performance.now() - settle) / 1000).toFixed(1)} s after the last write`,
  );
  recorder.kill("SIGTERM");
  standby.kill("SIGTERM");
  await Promise.all([recorder, standby].map((c) => new Promise((r) => c.on("close", r))));

  // lag per change: the end of the first step that applied its segment, minus its record time
  const storage = new S3Backend({
    bucket: a.s3.bucket,
    prefix: location.slice(`s3://${a.s3.bucket}/`.length),
    endpoint: a.s3.endpoint,
    region: a.s3.region,
    credentials: { accessKeyId: a.s3.accessKeyId, secretAccessKey: a.s3.secretAccessKey },
  });
  const keys = [];
  for await (const { key } of storage.list("journal/")) keys.push(parseSegmentKey(key)!);
  keys.sort((x, y) => x.seq - y.seq);
  const lags: number[] = [];
  let prev: string | null = null;
  for (const key of keys) {
    const applied = steps.find((s) => s.seq >= key.seq);
    const it = readSegment(await storage.read(segmentKey(key)), { ...key, prev });
    let next: IteratorResult<JournalRecord, SegmentTrailer>;
    while (!(next = await it.next()).done)
      if (next.value.op === "put" && next.value.kind === "object" && applied)
        lags.push((applied.at - Date.parse(next.value.t)) / 1000);
    prev = key.sha256;
  }
  storage.close();
  lags.sort((x, y) => x - y);
  const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]!;
  // the figures we claim are for default flags: say so, or name what was tuned
  const tuned = (["flush-interval", "poll", "standby-concurrency"] as const).filter((k) => values[k]);
  log(`${tuned.length ? `TUNED: ${tuned.map((k) => `--${k} ${values[k]}`).join(" ")}` : "default flags"}`);
  log(`journal: ${keys.length} segments; ${lags.length} changes followed`);
  log(
    `lag per change (record time to applied on B): p50 ${q(0.5).toFixed(2)} s, p99 ${q(0.99).toFixed(2)} s, max ${lags.at(-1)!.toFixed(2)} s`,
  );
  const kinds = new Map<string, number>();
  for (const s of steps) kinds.set(`${s.step}/${s.state}`, (kinds.get(`${s.step}/${s.state}`) ?? 0) + 1);
  const durations = steps.slice(1).map((s) => `${s.seconds.toFixed(1)} s/${s.applied}`);
  log(`follow steps (duration/objects written): ${durations.join(" ")}`);
  // where a follow step's seconds go (the standby's own phase timings), as medians
  const follows = steps.slice(1);
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const phaseNames = ["read", "state", "plan", "write"];
  log(
    `follow step phases, median s: ${phaseNames.map((p) => `${p} ${median(follows.map((s) => s.phases[p] ?? 0)).toFixed(2)}`).join(", ")}`,
  );
  const gaps = steps.slice(1).map((s, i) => (s.at - steps[i]!.at) / 1000);
  log(
    `steps: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}; between step ends: median ${gaps.sort((x, y) => x - y)[Math.floor(gaps.length / 2)]?.toFixed(2)} s`,
  );
  client.close();
  target.close();
} finally {
  await Promise.all([stopEnvironment(a), stopEnvironment(b)]);
}
