// A6: how long a `conclave` command takes from spawn to exit (wall) and how much CPU it burns, next
// to `node -e 0` on the same machine at the same moment (the floor no CLI can go under).
// Runnable alone: node --import tsx bench/lib/cliStartup.ts --nats URL --prefix P --node N [--runs 10] [--bin FILE]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './stats.ts';

/** the installed entry (bin/conclave.js → dist/), as `npx conclave` runs it */
export const CONCLAVE_BIN = fileURLToPath(new URL('../../bin/conclave.js', import.meta.url));

export interface CommandTiming {
  command: string;
  runs: number;
  /** median wall time from spawn to exit, ms */
  wallMs: number;
  /** median user + system CPU time of the child, ms */
  cpuMs: number;
}

export interface CliStartupResult {
  floor: CommandTiming;
  help: CommandTiming;
  status: CommandTiming;
}

/** user + system CPU of this process's waited-for children so far (/proc/self/stat cutime + cstime), ms */
function childrenCpuMs(): number {
  // the fields after the parenthesised command name; cutime and cstime are fields 16 and 17 of the line
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux: CPU figures are in 10 ms steps

/** Run argv `runs` times, one at a time; a non-zero exit is an error with the output. */
function time(label: string, argv: string[], runs: number, env: NodeJS.ProcessEnv): CommandTiming {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const cpuBefore = childrenCpuMs();
    const t0 = performance.now();
    const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8' });
    wall.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${label} exited ${r.status} (signal ${r.signal}):\n${r.stdout}${r.stderr}`);
    cpu.push(childrenCpuMs() - cpuBefore);
  }
  return { command: label, runs, wallMs: median(wall), cpuMs: median(cpu) };
}

export function measureCliStartup(opts: { natsUrl: string; prefix: string; node: string; runs?: number; bin?: string }): CliStartupResult {
  const runs = opts.runs ?? 10;
  const bin = opts.bin ?? CONCLAVE_BIN;
  const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: opts.natsUrl, CONCLAVE_PREFIX: opts.prefix };
  delete env.NODE_OPTIONS; // the bench's own flags are not the CLI's
  return {
    floor: time('node -e 0', ['-e', '0'], runs, env),
    help: time('conclave --help', [bin, '--help'], runs, env),
    status: time(`conclave status --node ${opts.node}`, [bin, 'status', '--node', opts.node], runs, env),
  };
}

const fmt = (t: CommandTiming) => `${t.command.padEnd(36)} wall ${t.wallMs.toFixed(0).padStart(5)} ms   cpu ${t.cpuMs.toFixed(0).padStart(5)} ms   (median of ${t.runs})`;

export function formatCliStartup(r: CliStartupResult): string[] {
  return [fmt(r.status), fmt(r.help), fmt(r.floor)];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { nats: { type: 'string' }, prefix: { type: 'string' }, node: { type: 'string' }, runs: { type: 'string' }, bin: { type: 'string' } },
    strict: true,
  });
  if (!values.nats || !values.prefix || !values.node) {
    process.stderr.write('error: --nats, --prefix and --node are required (a node that answers status there)\n');
    process.exit(2);
  }
  const result = measureCliStartup({ natsUrl: values.nats, prefix: values.prefix, node: values.node, runs: Number(values.runs ?? 10), bin: values.bin });
  process.stdout.write(`${formatCliStartup(result).join('\n')}\n`);
}
