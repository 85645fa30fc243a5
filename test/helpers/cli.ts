// Run the real `conclave` CLI as a child process, the way a user would: from this run's JavaScript
// copy of the source when scripts/run-tests.mjs made one, through tsx otherwise.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testOperator } from './testOperator.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../runtime/cli/main.ts', import.meta.url));

/**
 * node's arguments that run `main` (a .ts file). Under `npm test` a module of machines/, actors/ or
 * runtime/ runs from the copy that scripts/run-tests.mjs transpiled at the start of the run
 * (CONCLAVE_TEST_JS): the same code, started in a fraction of tsx's time, its stack traces naming the
 * .ts lines. Anything else, or a test file run alone (`node --import tsx --test FILE`), goes through tsx.
 */
export function nodeArgsFor(main: string): string[] {
  const js = transpiledOf(main);
  return js ? ['--enable-source-maps', js] : ['--import', 'tsx', main];
}

/** the transpiled copy of a module of machines/, actors/ or runtime/ that this run made, if it made one */
export function transpiledOf(source: string): string | null {
  const tree = process.env.CONCLAVE_TEST_JS;
  const path = relative(ROOT, source);
  if (!tree || !/^(machines|actors|runtime)\//.test(path)) return null;
  const js = join(tree, path.replace(/\.ts$/, '.js'));
  if (!existsSync(js)) throw new Error(`${js} does not exist: CONCLAVE_TEST_JS must name the transpiled copy of this run (scripts/run-tests.mjs makes it)`);
  return js;
}

/** the command line of the `conclave` CLI, as nodeArgsFor starts it */
export function cliCommand(): string[] {
  return [process.execPath, ...nodeArgsFor(MAIN)];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** the environment of a child: this process's, with the test operator's key (testOperator.ts) and `extra` (undefined: removed) */
export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONCLAVE_LOG_LEVEL: 'info', ...testOperator().env, ...extra };
  delete env.NODE_TEST_CONTEXT; // children are programs, not test files
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return env;
}

/** Run a program to completion with its output captured; killed (and rejected) after timeoutMs. */
export function runProgram(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string; label: string }): Promise<CliResult> {
  // generous: a loaded 2-core machine takes seconds to start a tsx process; a hang still fails
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.label} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Run one CLI command to completion. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return runProgram(process.execPath, [...nodeArgsFor(MAIN), ...args], { ...opts, label: `conclave ${args.join(' ')}` });
}

/** A long-running program (`node <main> args…`, see nodeArgsFor) with its output captured; killed at exit. */
export class TsProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(main: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [...nodeArgsFor(main), ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  /** wait until the combined output matches, or fail with the output so far */
  async waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    await waitUntil(() => pattern.test(this.stdout + this.stderr), { timeoutMs, what: `output ${pattern}`, context: () => this.output() });
  }

  output(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }
}

/** A long-running `conclave run` (or demo) process with its output captured. */
export class CliProcess extends TsProcess {
  constructor(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    super(MAIN, args, opts);
  }
}

const live = new Set<TsProcess>();
process.on('exit', () => {
  for (const p of live) if (p.running) p.child.kill('SIGKILL');
});

/** SIGKILL every process started here that still runs and wait for them: a test file's last word, so that nothing keeps it from exiting */
export async function killLeftoverProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
}

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; what: string; context?: () => string },
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what}${opts.context ? `\n${opts.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
