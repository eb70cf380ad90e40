/**
 * Recorder benchmark (issue 13): sustained changes at a fixed rate (default 500/s) against a
 * fresh test cluster while `crd-backup record` runs with its default flags (5 s flush interval),
 * for a bounded time. Prints the rate the cluster took; the journal lag per event (receipt to its
 * segment stored, from the recorder's own "segment stored" log lines and the records' times:
 * p50, p99, max), which includes the wait for the segment to close (up to --flush-interval, by
 * design), and the store lag (segment closed to stored); and the recorder's RSS over time.
 * Targets (issue 13): lag p99 under 2 s, RSS under 200 MB and flat.
 *
 *   node bench/record.ts [--rate 500] [--seconds 300] [--objects 1000] [--concurrency 32] [--flush-interval 5s]
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI_MAIN, cliNodeFlags } from "../cli/node-flags.ts";
import { KubeClient } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { parseSegmentKey, segmentKey } from "../src/journal/segment-key.ts";
import type { JournalRecord, SegmentTrailer } from "../src/journal/segment-format.ts";
import { readSegment } from "../src/journal/segment-reader.ts";
import { S3Backend } from "../src/storage/s3.ts";
import { startEnvironment, stopEnvironment } from "../test/env/environment.ts";
import { BENCH_GROUP, patchAtRate, seedBench } from "./seed.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "300" },
    objects: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    "flush-interval": { type: "string", default: "5s" },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const OBJECTS = Number(values.objects);
const CONCURRENCY = Number(values.concurrency);
const CRDS = 5;
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

const env = await startEnvironment();
try {
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfig }), {
    maxSockets: CONCURRENCY,
  });
  log(`seeding ${CRDS} CRDs x ${OBJECTS / CRDS} objects`);
  const plurals = await seedBench(client, CRDS, OBJECTS / CRDS, log);

  const prefix = `bench-record-${Date.now()}`;
  const recorder = spawn(
    process.execPath,
    [
      ...cliNodeFlags(),
      CLI_MAIN,
      "record",
      "--storage",
      `s3://${env.s3.bucket}/${prefix}`,
      "--include-groups",
      BENCH_GROUP,
      "--metrics-addr",
      "127.0.0.1:0",
      "--log-level",
      "debug",
      "--flush-interval",
      values["flush-interval"],
    ],
    {
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
    },
  );
  /** key -> when the recorder logged it stored. */
  const stored = new Map<string, number>();
  let following = false;
  let buffered = "";
  recorder.stderr.on("data", (c: Buffer) => {
    buffered += c.toString();
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.startsWith("{")) continue;
      const l = JSON.parse(line) as { time: string; msg: string; key?: string };
      if (l.msg === "segment stored") stored.set(l.key!, Date.parse(l.time));
      if (l.msg === "following every resource") following = true;
      if (l.msg.startsWith("gap") || l.msg.includes("failed")) log(`recorder: ${line}`);
    }
  });
  while (!following) await sleep(200);
  log(`recorder following; ${RATE} changes/s for ${SECONDS} s, ${CONCURRENCY} at once`);

  const rss: { at: number; mib: number }[] = [];
  const start = performance.now();
  const sampler = setInterval(() => {
    try {
      const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${recorder.pid}/status`, "utf8"))![1]);
      rss.push({ at: (performance.now() - start) / 1000, mib: kib / 1024 });
    } catch {
      // the recorder is gone
    }
  }, 5000);

  // the writers: merge patches of the seeded objects, round robin, paced to RATE
  const w = await patchAtRate(client, plurals, OBJECTS, {
    rate: RATE,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
  });
  const writes = w.sent - w.failed;
  log(
    `writes: ${writes} in ${w.seconds.toFixed(1)} s = ${(writes / w.seconds).toFixed(0)}/s (${w.failed} failed)`,
  );
  await sleep(7000); // the last interval's segment
  clearInterval(sampler);
  // utime + stime, in clock ticks (100 a second on Linux), fields 14 and 15 after the command
  const stat = readFileSync(`/proc/${recorder.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
  recorder.kill("SIGTERM");
  await new Promise((r) => recorder.on("close", r));

  // lag per record: its segment's stored time minus its receipt time
  const storage = new S3Backend({
    bucket: env.s3.bucket,
    prefix,
    endpoint: env.s3.endpoint,
    region: env.s3.region,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
  });
  const keys = [];
  for await (const { key } of storage.list("journal/")) keys.push(parseSegmentKey(key)!);
  keys.sort((a, b) => a.seq - b.seq);
  const lags: number[] = [];
  const storeLags: number[] = [];
  let puts = 0;
  let prev: string | null = null;
  for (const key of keys) {
    const at = stored.get(segmentKey(key));
    if (at !== undefined) storeLags.push((at - key.to.getTime()) / 1000);
    const it = readSegment(await storage.read(segmentKey(key)), { ...key, prev });
    let next: IteratorResult<JournalRecord, SegmentTrailer>;
    while (!(next = await it.next()).done) {
      if (next.value.op !== "put" || next.value.kind !== "object") continue;
      puts++;
      if (at !== undefined) lags.push((at - Date.parse(next.value.t)) / 1000);
    }
    prev = key.sha256;
  }
  storage.close();
  lags.sort((a, b) => a - b);
  storeLags.sort((a, b) => a - b);
  const q = (p: number, xs = lags) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
  log(`journal: ${keys.length} segments, ${puts} object puts (writes acknowledged: ${writes})`);
  log(
    `recorder CPU: ${cpuSeconds.toFixed(1)} s in all (base snapshot included), ${((cpuSeconds / Math.max(1, puts)) * 1e6).toFixed(0)} µs per change`,
  );
  log(
    `lag per event (flush interval ${values["flush-interval"]}): p50 ${q(0.5).toFixed(2)} s, p99 ${q(0.99).toFixed(2)} s, max ${lags.at(-1)!.toFixed(2)} s`,
  );
  log(
    `store lag per segment (closed to stored): p50 ${q(0.5, storeLags).toFixed(2)} s, p99 ${q(0.99, storeLags).toFixed(2)} s, max ${storeLags.at(-1)!.toFixed(2)} s`,
  );
  const half = Math.floor(rss.length / 2);
  const peak = (xs: typeof rss) => Math.max(...xs.map((s) => s.mib));
  log(
    `recorder RSS (MiB, every 5 s): ${rss.map((s) => s.mib.toFixed(0)).join(" ")}; ` +
      `peak ${peak(rss).toFixed(0)}, first half ${peak(rss.slice(0, half)).toFixed(0)}, second half ${peak(rss.slice(half)).toFixed(0)}`,
  );
  client.close();
} finally {
  await stopEnvironment(env);
}
