#!/usr/bin/env -S node --max-semi-space-size=8
// The entry stays tiny: the compile cache must be on before the large dependencies load, which
// halves start-up time for every run after the first. The shebang's V8 flag caps the young
// generation, which a snapshot's stream of short-lived page objects otherwise grows to ~100 MB of
// peak RSS (bench/snapshot.ts); node flags cannot be set once running, so it lives there.
import module from "node:module";

module.enableCompileCache?.();
const { run } = await import("./program.ts");
process.exitCode = await run(process.argv);
