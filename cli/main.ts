#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=8 --memory-saver-mode
// The entry stays tiny: the compile cache must be on before the program's chunk loads (the
// bundle keeps it a file of its own, cli/bundle.ts), which halves start-up CPU for every run
// after the first. The shebang's V8 flags: --max-semi-space-size caps the young generation, which
// a snapshot's stream of short-lived page objects otherwise grows to ~100 MB of peak RSS
// (bench/snapshot.ts). --memory-saver-mode keeps the old generation close to what is live: a
// restore's verification and planning passes leave ~50 MB of garbage that V8 otherwise keeps
// (and the pages it frees, pooled) until a full GC a minute or two into the writes, and that
// transient set the peak, growing with the archive (bench:scale: 182 MiB at 50,010 objects and
// 233 at 300,000 before, 142 and 142 with it; the split, src/report/memory-trace.ts: V8 heap total
// 80 -> 27 MiB). It costs GC CPU (20,000 objects: 10.1 -> 13.0 s, wall time unchanged within the
// machine's noise). Node flags cannot be set once running, so they live here. So does
// MALLOC_ARENA_MAX: glibc gives each thread (libuv's pool inflates, hashes and writes files) its
// own malloc arena, and their fragmentation grew a restore's RSS by a few MB a minute (50k
// objects: 185 -> 200 MiB, 300k: 239 MiB); with two arenas it stays flat (183 MiB). Other libcs
// ignore it. jemalloc (LD_PRELOAD) was measured too: 206 MiB at 100,000 objects, no better.
import { enablePrivateCompileCache } from "./compile-cache.ts";

enablePrivateCompileCache();
const { run } = await import("./program.ts");
process.exitCode = await run(process.argv);
