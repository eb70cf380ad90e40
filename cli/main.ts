#!/usr/bin/env -S node --max-semi-space-size=8 --initial-old-space-size=128
// The entry stays tiny: the compile cache must be on before the large dependencies load, which
// halves start-up time for every run after the first. The shebang's V8 flags size the heap for a
// snapshot's stream of short-lived objects (bench/snapshot.ts): the young generation is capped,
// which it would otherwise grow to ~100 MB of peak RSS, and the old generation may reach 128 MB
// before it is collected, where V8 would otherwise fit it tightly around the ~40 MB the loaded
// SDKs hold and run a full GC every ~100 ms (a third of a snapshot's client CPU, for ~30 MB of
// peak RSS saved). Node flags cannot be set once running, so they live here.
import module from "node:module";

module.enableCompileCache?.();
const { run } = await import("./program.ts");
process.exitCode = await run(process.argv);
