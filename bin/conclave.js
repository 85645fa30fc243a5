#!/usr/bin/env node
// The installed entry: the compiled CLI (dist/, made by `npm run build`; `prepare` builds it on
// `npm install` in a clone). Source maps first, so a stack trace names the TypeScript line.
process.setSourceMapsEnabled(true);
await import('../dist/runtime/cli/main.js');
