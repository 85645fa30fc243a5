#!/usr/bin/env node
// The installed entry: the CLI bundled into dist/cli/ (scripts/build.mjs, run by `npm run build`;
// `prepare` builds it on `npm install` in a clone). In the commands that keep running (a controller, the demo, the
// inspector) a stack trace in their logs names the TypeScript line: the source map of a module is
// read when a stack through it is printed (sourceMapStacks.js), not every map at start-up. A client
// command prints one `error:` line, never a stack. `conclave run` loads the same CLI as one file
// compiled with the code cache the build made for it (runBundle.js); the other commands load only
// the chunks of dist/cli/main.js that they use.
const command = process.argv[2] ?? '';
if (['run', 'demo', 'inspect'].includes(command) && !process.sourceMapsEnabled) {
  const { installLazySourceMaps } = await import('./sourceMapStacks.js');
  installLazySourceMaps(new URL('../dist/', import.meta.url));
}
if (command === 'run') {
  const { loadRunBundle } = await import('./runBundle.js');
  loadRunBundle(new URL('../dist/cli/', import.meta.url), process.env.CONCLAVE_CODE_CACHE === '0' ? 'none' : 'use');
} else {
  await import('../dist/cli/main.js');
}
