#!/usr/bin/env node
// The installed entry: the CLI bundled into dist/cli/ (scripts/build.mjs, run by `npm run build`;
// `prepare` builds it on `npm install` in a clone). In the commands that keep running (a controller, the demo, the
// inspector) a stack trace in their logs names the TypeScript line: the source map of a module is
// read when a stack through it is printed (sourceMapStacks.js), not every map at start-up. A client
// command prints one `error:` line, never a stack.
if (['run', 'demo', 'inspect'].includes(process.argv[2] ?? '') && !process.sourceMapsEnabled) {
  const { installLazySourceMaps } = await import('./sourceMapStacks.js');
  installLazySourceMaps(new URL('../dist/', import.meta.url));
}
await import('../dist/cli/main.js');
