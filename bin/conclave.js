#!/usr/bin/env node
// The installed entry: the compiled CLI (dist/, made by `npm run build`; `prepare` builds it on
// `npm install` in a clone). The commands that keep running (a controller, the demo, the
// inspector) turn source maps on first, so a stack trace in their logs names the TypeScript line.
// A client command prints one `error:` line, never a stack: it skips reading every module's source
// map (≈15% of `conclave status`).
if (['run', 'demo', 'inspect'].includes(process.argv[2] ?? '')) process.setSourceMapsEnabled(true);
await import('../dist/runtime/cli/main.js');
