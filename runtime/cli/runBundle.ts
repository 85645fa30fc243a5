// The entry of dist/cli/run.cjs (scripts/build.mjs): the whole CLI as one CommonJS file, which
// bin/conclave.js compiles with the V8 code cache the build wrote beside it when the command is
// `run` (bin/runBundle.js). main.ts runs the command line when the file is loaded, as it does in
// dist/cli/main.js.
export { main } from './main.ts';

/**
 * For the build only (bin/runBundle.js, writeRunCodeCache): evaluate the modules a `conclave run`
 * loads, so that the code cache written afterwards holds them compiled — the functions their
 * evaluation calls (zod's and xstate's builders among them), not only their top-level code.
 */
export async function loadRunModules(): Promise<void> {
  await Promise.all([import('./run.ts'), import('../controller.ts')]);
}
