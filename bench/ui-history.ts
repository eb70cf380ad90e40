/**
 * The web view's journal history at scale, without a cluster: bench/history.ts writes its location
 * (a base snapshot of --keys objects and one chain of --events changes over 24 h into a local
 * directory, and times the CLI's `history` and `changes` on it when dist/ is built); then
 * `crd-backup ui` runs from the sources in a child process (the CLI's Node flags), and this script
 * times over HTTP: /api/history of the object bench/history.ts asks about, cold (the server's first
 * request); then, once the server logs that it has indexed the journal by record (in the
 * background, after that first history), /api/history and the /objects/ page (journal window and
 * stored snapshots) of --samples objects each, every one a different object never asked before,
 * and /api/changes over one hour in the middle of the chain, --samples windows a minute apart, then
 * the /changes page's next page of the last one (the summary the view kept); with the server's
 * peak RSS (VmHWM).
 *
 *   npm run build && node bench/ui-history.ts [--events 1000000] [--keys 100000] [--samples 3] [--dir DIR [--existing]]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { CLI_MAIN, cliNodeEnv, cliNodeFlags } from "../cli/node-flags.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    keys: { type: "string", default: "100000" },
    samples: { type: "string", default: "3" },
    dir: { type: "string" },
    // --dir already holds bench/history.ts's location for these flags: time the view on it as it is
    existing: { type: "boolean", default: false },
  },
});
const keys = Number(values.keys);
const GROUP = "bench.example.com";
// as bench/history.ts names its objects and its window
const nameOf = (k: number) => `item-${String(k).padStart(7, "0")}`;
const nsOf = (k: number) => `ns-${k % 10}`;
const FINISHED = new Date("2026-12-03T05:00:01.000Z");
const target = Math.floor(keys / 2);

const dir = values.dir ?? mkdtempSync(path.join(os.tmpdir(), "crd-backup-bench-ui-history-"));
if (values.existing && !values.dir) throw new Error("--existing needs --dir");
const gen = values.existing
  ? { stdout: "generated before (--existing)", stderr: "" }
  : spawnSync(
      process.execPath,
      [
        path.join(import.meta.dirname, "history.ts"),
        ...["--events", values.events, "--keys", values.keys, "--dir", dir, "--keep"],
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
// the CLI's figures for the same location, when dist/ is built (bench/history.ts needs it)
console.log(gen.stdout.trim());
if (!gen.stdout.startsWith("generated")) throw new Error(`generating the location failed: ${gen.stderr}`);

const child = spawn(
  process.execPath,
  [...cliNodeFlags(), CLI_MAIN, "ui", "--storage", dir, "--listen", "127.0.0.1:0"],
  { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...cliNodeEnv() } },
);
const t0 = performance.now();
let indexedAt: number | undefined;
const indexed = new Promise<string>((resolve) => {
  let err = "";
  child.stderr.on("data", (c: Buffer) => {
    process.stderr.write(c);
    err += c.toString();
    const line = err.split("\n").find((l) => l.includes("journal indexed for history"));
    if (line && indexedAt === undefined) {
      indexedAt = performance.now();
      resolve(line);
    }
  });
});
const base = await new Promise<string>((resolve, reject) => {
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    const m = / at (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  child.on("close", (code) => reject(new Error(`ui exited (${code})`)));
});

const peakRssMiB = () =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;

/** Each address's seconds, the last response's size and the peak RSS after them. */
async function timed(paths: string[]): Promise<{ seconds: number[]; bytes: number; peakRssMiB: number }> {
  const seconds: number[] = [];
  let bytes = 0;
  for (const p of paths) {
    const t0 = performance.now();
    const res = await fetch(base + p);
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${p}: ${res.status} ${body.slice(0, 300)}`);
    seconds.push(+((performance.now() - t0) / 1000).toFixed(2));
    bytes = Buffer.byteLength(body);
  }
  return { seconds, bytes, peakRssMiB: Math.round(peakRssMiB()) };
}

const samples = Number(values.samples);
/** --samples objects, none of them the first one asked about nor each other (a stride coprime with --keys). */
const others = (from: number) =>
  Array.from({ length: samples }, (_, i) => (target + (from + i + 1) * 7919) % keys);
const apiHistory = (k: number) =>
  `api/history?resource=items.${GROUP}&namespace=${nsOf(k)}&name=${nameOf(k)}`;
const objectPage = (k: number) => `objects/${GROUP}/items/${nsOf(k)}/${nameOf(k)}`;

try {
  const since = new Date(FINISHED.getTime() + 12 * 3_600_000);
  const until = new Date(since.getTime() + 3_600_000);
  const cold = await timed([apiHistory(target)]);
  const indexLine = await indexed;
  const warmAfterStartSeconds = +((indexedAt! - t0) / 1000).toFixed(1);
  const history = await timed(others(0).map(apiHistory));
  const page = await timed(others(samples).map(objectPage));
  // each sample a window of its own (a minute later): the view keeps the last summary it served
  const window = (i: number) =>
    `since=${new Date(since.getTime() + i * 60_000).toISOString()}&until=${new Date(until.getTime() + i * 60_000).toISOString()}`;
  const changes = await timed(Array.from({ length: samples }, (_, i) => `api/changes?${window(i)}`));
  // the changes page's next page: the same window again
  const changesPage2 = await timed([`changes?${window(samples - 1)}&skip=100`]);
  console.log(
    JSON.stringify(
      {
        events: Number(values.events),
        objects: keys,
        load: os.loadavg().map((l) => +l.toFixed(1)),
        apiHistoryCold: cold,
        indexed: { afterServerStartSeconds: warmAfterStartSeconds, log: indexLine.trim() },
        apiHistoryWarmOtherObjects: history,
        objectPageWarmOtherObjects: page,
        apiChangesOneHour: changes,
        changesNextPage: changesPage2,
      },
      null,
      2,
    ),
  );
} finally {
  child.kill("SIGINT");
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
