import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CLI_MAIN, cliNodeFlags } from "../../cli/node-flags.ts";
import {
  JOURNAL_PREFIX,
  parseSegmentKey,
  segmentKey,
  type SegmentKey,
} from "../../src/journal/segment-key.ts";
import type { JournalRecord, SegmentTrailer } from "../../src/journal/segment-format.ts";
import { readSegment } from "../../src/journal/segment-reader.ts";
import { expectedArchive, plainManifest } from "../../src/archive/manifest.ts";
import { readArchive } from "../../src/archive/reader.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { StorageBackend } from "../../src/storage/backend.ts";
import { openArchive, resolveSnapshot } from "../../src/storage/snapshots.ts";
import { createCrd, waitForCrdEstablished } from "./cluster.ts";
import { envVars } from "./cli.ts";

export interface LogLine {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** `crd-backup record` running in a child process, its JSON log lines collected as they come. */
export interface RunningRecorder {
  child: ChildProcess;
  lines: LogLine[];
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor: (pred: () => boolean, what: string, ms?: number) => Promise<void>;
  count: (msg: string) => number;
  metrics: () => Promise<string>;
  log: () => string;
}

export function spoolDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), "crd-backup-spool-"));
}

export function startRecorder(args: string[], env: Record<string, string> = {}): RunningRecorder {
  return startLongRunning("record", args, env);
}

/** A long-running command (`record`, `standby`) in a child process, its JSON log lines collected. */
export function startLongRunning(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): RunningRecorder {
  const child = spawn(process.execPath, [...cliNodeFlags(), CLI_MAIN, command, ...args], {
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", ...envVars(), ...env },
  });
  const lines: LogLine[] = [];
  let stdout = "";
  let buffered = "";
  const waiters: (() => void)[] = [];
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => {
    buffered += c.toString();
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith("{")) lines.push(JSON.parse(line) as LogLine);
      else lines.push({ time: new Date().toISOString(), level: "text", msg: line });
      for (const w of waiters.splice(0)) w();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  const log = () => lines.map((l) => JSON.stringify(l)).join("\n");
  const waitFor = async (pred: () => boolean, what: string, ms = 90_000) => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${log()}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
  const metrics = async () => {
    await waitFor(() => count("serving metrics") > 0, "the metrics server");
    const url = String(lines.find((l) => l.msg === "serving metrics")!["url"]);
    return (await fetch(url)).text();
  };
  return { child, lines, stdout: () => stdout, exited, waitFor, count, metrics, log };
}

export interface JournalSegment {
  key: SegmentKey;
  records: JournalRecord[];
  trailer: SegmentTrailer;
}

/**
 * Every chain under journal/ read back in order, each segment checked by readSegment against the
 * one before it (hash chain, windows, bodies' SHA-256): a broken chain throws.
 */
export async function readJournal(storage: StorageBackend): Promise<Map<string, JournalSegment[]>> {
  const keys: SegmentKey[] = [];
  for await (const { key } of storage.list(JOURNAL_PREFIX)) {
    const k = parseSegmentKey(key);
    if (k) keys.push(k);
  }
  const chains = new Map<string, SegmentKey[]>();
  for (const k of keys) {
    const chain = chains.get(k.base) ?? [];
    chain.push(k);
    chains.set(k.base, chain);
  }
  const out = new Map<string, JournalSegment[]>();
  for (const [base, chain] of chains) {
    chain.sort((a, b) => a.seq - b.seq);
    const segments: JournalSegment[] = [];
    let prev: string | null = null;
    for (const [i, key] of chain.entries()) {
      if (key.seq !== i + 1) throw new Error(`chain ${base}: segment ${i + 1} is missing`);
      if (i > 0 && key.from.getTime() !== chain[i - 1]!.to.getTime())
        throw new Error(`chain ${base}: segment ${key.seq} does not start where ${key.seq - 1} ended`);
      const records: JournalRecord[] = [];
      const it = readSegment(await storage.read(segmentKey(key)), { ...key, prev });
      let next: IteratorResult<JournalRecord, SegmentTrailer>;
      while (!(next = await it.next()).done) records.push(next.value);
      segments.push({ key, records, trailer: next.value });
      prev = key.sha256;
    }
    out.set(base, segments);
  }
  return out;
}

export type Stamped = JournalRecord & { seq: number };

export function allRecords(segments: JournalSegment[]): Stamped[] {
  return segments.flatMap((s) => s.records.map((r) => ({ ...r, seq: s.key.seq })));
}

/**
 * A minimal replay (docs/format.md, "Replay", step 5) of the object records of `group`, for
 * checking a final state: object key -> body.
 */
export function replayObjects(
  records: JournalRecord[],
  group: string,
  base: Map<string, Buffer>,
): Map<string, Buffer> {
  const state = new Map(base);
  const seen = new Map<string, Set<string>>();
  for (const r of records) {
    if (r.op === "put" && r.kind === "object" && r.group === group) {
      const k = objectId(r);
      state.set(k, r.body);
      for (const s of seen.values()) s.add(k);
    } else if (r.op === "delete" && r.kind === "object" && r.group === group) state.delete(objectId(r));
    else if (r.op === "resync" && r.kind === "object" && r.group === group) {
      const res = `${r.plural}/`;
      if (r.phase === "begin") seen.set(res, new Set());
      else {
        const kept = seen.get(res) ?? new Set<string>();
        for (const k of [...state.keys()]) if (k.startsWith(res) && !kept.has(k)) state.delete(k);
        seen.delete(res);
      }
    }
  }
  return state;
}

export function objectId(r: { plural?: string; namespace?: string; name: string }): string {
  return `${r.plural}/${r.namespace ?? ""}/${r.name}`;
}

export function crdFor(group: string, plural: string, kind: string, scope = "Namespaced"): object {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope,
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
}

export async function makeCrd(admin: KubeClient, group: string, plural: string, kind: string): Promise<void> {
  await createCrd(admin, crdFor(group, plural, kind));
  await waitForCrdEstablished(admin, `${plural}.${group}`);
}

export const objPath = (group: string, plural: string, ns: string, name?: string) =>
  `/apis/${group}/v1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;

/** Creates an object from raw JSON text (so int64 values go over the wire exactly). */
export async function createRaw(admin: KubeClient, path: string, text: string): Promise<{ rv: string }> {
  const res = await admin.request({ method: "POST", path, body: text });
  return { rv: (JSON.parse(res.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion };
}

export async function patch(admin: KubeClient, path: string, body: object): Promise<{ rv: string }> {
  const res = await admin.request({
    method: "PATCH",
    path,
    body: JSON.stringify(body),
    contentType: "application/merge-patch+json",
  });
  return { rv: (JSON.parse(res.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion };
}

export const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** entry name -> SHA-256 of its body, for every entry of a snapshot. */
export async function snapshotEntries(storage: StorageBackend, id: string): Promise<Map<string, string>> {
  const manifest = plainManifest((await resolveSnapshot(storage, id)).manifest);
  const entries = new Map<string, string>();
  for await (const e of readArchive(
    await openArchive(storage, id, manifest.formatVersion),
    expectedArchive(manifest),
  )) {
    if (e.kind === "crd" || e.kind === "namespace" || e.kind === "object")
      entries.set(e.name, e.record.sha256);
  }
  return entries;
}
