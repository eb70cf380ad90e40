/**
 * The web view on a larger location, without a cluster: bench/replay.ts writes a base snapshot of
 * --keys objects (10 namespaces) and a journal of --events changes into a local directory; then
 * `crd-backup ui` runs from the sources in a child process (the CLI's Node flags), and this
 * script times over HTTP: the first object page of the snapshot (reads, verifies and indexes it),
 * --samples object pages once warm (median and worst), one namespace paged through to its end,
 * the first page of the state at the end of the journal (rebuilt as `restore --at` does), the
 * first page of what changed from the base to that state, and the server's peak RSS (VmHWM).
 *
 *   node bench/ui.ts [--keys 50000] [--events 100000] [--samples 200] [--page-size 100] [--dir DIR]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { CLI_MAIN, cliNodeEnv, cliNodeFlags } from "../cli/node-flags.ts";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "50000" },
    events: { type: "string", default: "100000" },
    samples: { type: "string", default: "200" },
    "page-size": { type: "string", default: "100" },
    dir: { type: "string" },
  },
});
const keys = Number(values.keys);
const samples = Number(values.samples);
const GROUP = "bench.example.com";
const BASE = "20261203T050000Z-00000000";
const nameOf = (k: number) => `item-${String(k).padStart(7, "0")}`;
const nsOf = (k: number) => `ns-${k % 10}`;

const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), "crd-backup-bench-ui-"));
const gen = spawnSync(
  process.execPath,
  [
    path.join(import.meta.dirname, "replay.ts"),
    "--keys",
    String(keys),
    "--events",
    values.events,
    "--dir",
    dir,
    "--keep",
  ],
  { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
);
if (gen.status !== 0) throw new Error(`generating the location failed (exit ${gen.status})`);
console.log(gen.stdout.split("\n")[0]);

const child = spawn(
  process.execPath,
  [
    ...cliNodeFlags(),
    CLI_MAIN,
    "ui",
    "--storage",
    dir,
    "--listen",
    "127.0.0.1:0",
    "--page-size",
    values["page-size"],
  ],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...cliNodeEnv() } },
);
const base = await new Promise<string>((resolve, reject) => {
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    const m = / at (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  child.on("close", (code) => reject(new Error(`ui exited (${code})`)));
});

async function get(p: string): Promise<{ ms: number; body: string; url: string }> {
  const t0 = performance.now();
  const res = await fetch(base + p.replace(/^\//, ""));
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${body.slice(0, 300)}`);
  return { ms: performance.now() - t0, body, url: decodeURIComponent(res.url) };
}

const peakRssMiB = () =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;
const objectPath = (k: number) => `/snapshots/${BASE}/${GROUP}/items/${nsOf(k)}/${nameOf(k)}`;

try {
  const cold = await get(objectPath(0));
  const rssAfterIndex = peakRssMiB();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push((await get(objectPath((i * 7919) % keys))).ms);
  times.sort((a, b) => a - b);
  let after = "";
  let pages = 0;
  let rows = 0;
  const t0 = performance.now();
  for (;;) {
    const { body } = await get(`/snapshots/${BASE}/${GROUP}/items/ns-3${after ? `?after=${after}` : ""}`);
    pages++;
    rows += (body.match(/<tr>/g) ?? []).length - 1;
    const next = /rel="next" href="[^"]*\?after=([^"]+)"/.exec(body);
    if (!next) break;
    after = next[1]!;
  }
  const pagingSeconds = (performance.now() - t0) / 1000;
  const rssAfterPaging = peakRssMiB();
  const atNow = await get(`/at/bench-cluster/now/${GROUP}/items/ns-1`);
  const versions = await get(`/objects/${GROUP}/items/${nsOf(11)}/${nameOf(11)}`);
  // the state at the end of the journal against the base: the point in time is open already
  const end = /\/at\/bench-cluster\/([^/]+)\//.exec(atNow.url)![1]!;
  const changes = await get(`/changes?from=${BASE}&to=bench-cluster@${end}`);
  console.log(
    JSON.stringify(
      {
        objects: keys,
        firstObjectPageColdSeconds: +(cold.ms / 1000).toFixed(2),
        objectPageWarmMs: {
          median: +times[Math.floor(times.length / 2)]!.toFixed(1),
          p95: +times[Math.floor(times.length * 0.95)]!.toFixed(1),
          max: +times.at(-1)!.toFixed(1),
        },
        namespacePagedThrough: { pages, rows, seconds: +pagingSeconds.toFixed(2) },
        pointInTimeFirstPageColdSeconds: +(atNow.ms / 1000).toFixed(2),
        versionsPageMs: +versions.ms.toFixed(1),
        changesFirstPageMs: +changes.ms.toFixed(1),
        serverPeakRssMiB: {
          afterIndexing: +rssAfterIndex.toFixed(0),
          afterPaging: +rssAfterPaging.toFixed(0),
          afterPointInTime: +peakRssMiB().toFixed(0),
        },
      },
      null,
      2,
    ),
  );
} finally {
  child.kill("SIGINT");
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
