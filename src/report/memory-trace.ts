/**
 * A debugging aid, off unless CRD_BACKUP_MEMORY_TRACE names a file: every interval, one JSON line
 * with the process's resident memory split into V8's heap, memory outside it that V8 accounts for
 * (Buffers, ArrayBuffers) and the rest (native: malloc arenas, thread stacks, zlib/zstd and TLS
 * contexts, the binary's pages). Only sizes are written, never names or contents. It tells a
 * per-object structure (heap grows with objects) from fragmentation (heap flat, native grows).
 */
import { appendFileSync, readFileSync } from "node:fs";
import v8 from "node:v8";

export const MEMORY_TRACE_ENV = "CRD_BACKUP_MEMORY_TRACE";
const DEFAULT_INTERVAL_MS = 1000;

export interface MemorySample {
  /** Milliseconds since the trace started. */
  t: number;
  rss: number;
  /** The kernel's high-water mark of rss (VmHWM), what GNU time reports as the peak. */
  hwm: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Memory V8 itself took with malloc (not part of heapTotal). */
  v8Malloced: number;
  /** rss - heapTotal - external - v8Malloced: what neither V8 nor Node's Buffers account for. */
  native: number;
  /** CPU time of the process so far (user + system), in milliseconds: what a setting costs. */
  cpuMs: number;
}

/** VmHWM and VmRSS in bytes, from /proc (Linux only; 0 elsewhere). */
function procStatus(): { hwm: number; rss: number } {
  try {
    const text = readFileSync("/proc/self/status", "latin1");
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { hwm: kib("VmHWM") * 1024, rss: kib("VmRSS") * 1024 };
  } catch {
    return { hwm: 0, rss: 0 };
  }
}

export function memorySample(start: number): MemorySample {
  const m = process.memoryUsage();
  const { hwm } = procStatus();
  const v8Malloced = v8.getHeapStatistics().malloced_memory;
  const cpu = process.cpuUsage();
  return {
    t: Math.round(performance.now() - start),
    rss: m.rss,
    hwm,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    v8Malloced,
    native: m.rss - m.heapTotal - m.external - v8Malloced,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

/**
 * Starts the trace when the environment asks for one. The timer is unref'd: it never keeps the
 * process alive, and a last sample is written at exit. A file that cannot be written stops it.
 * Returns what stops it (a test's), or undefined when it is off.
 */
export function startMemoryTrace(env: NodeJS.ProcessEnv = process.env): (() => void) | undefined {
  const file = env[MEMORY_TRACE_ENV];
  if (!file) return undefined;
  const interval = Number(env[`${MEMORY_TRACE_ENV}_INTERVAL_MS`]) || DEFAULT_INTERVAL_MS;
  const start = performance.now();
  const write = () => {
    try {
      appendFileSync(file, JSON.stringify(memorySample(start)) + "\n");
    } catch {
      clearInterval(timer);
    }
  };
  const timer = setInterval(write, interval);
  timer.unref();
  process.once("exit", write);
  write();
  return () => {
    clearInterval(timer);
    process.off("exit", write);
  };
}
