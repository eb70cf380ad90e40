#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=8
// The entry stays tiny: the compile cache must be on before the program's chunk loads (the
// bundle keeps it a file of its own, cli/bundle.ts), which halves start-up CPU for every run
// after the first. The shebang's V8 flag caps the young
// generation, which a snapshot's stream of short-lived page objects otherwise grows to ~100 MB of
// peak RSS (bench/snapshot.ts); node flags cannot be set once running, so it lives there. So does
// MALLOC_ARENA_MAX: glibc gives each thread (libuv's pool inflates, hashes and writes files) its
// own malloc arena, and their fragmentation grew a restore's RSS by a few MB a minute (50k objects:
// 185 -> 200 MiB, 300k: 239 MiB); with two arenas it stays flat (183 MiB). Other libcs ignore it.
import { enablePrivateCompileCache } from "./compile-cache.ts";

enablePrivateCompileCache();
const { run } = await import("./program.ts");
process.exitCode = await run(process.argv);
