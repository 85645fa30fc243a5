// Run an example the way its README says: `npm run example:<name>` (or the command that script
// runs, for long-running instances a test must signal), with its output captured.
import { type CliResult, runProgram } from '../helpers/cli.ts';

/** `npm run example:<name>` to completion */
export function runNpmScript(script: string, timeoutMs = 60_000): Promise<CliResult> {
  return runProgram('npm', ['run', script], { timeoutMs, label: `npm run ${script}` });
}

/** a long-running example process: `node --import tsx <main> args…` (what its npm script runs) */
export { TsProcess as ExampleProcess } from '../helpers/cli.ts';
