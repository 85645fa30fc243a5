// `node --import tsx bench/scaling.ts [--throughput] [--keys LIST] [--catchup-mb N] [--catchup-value-bytes N]
// [--catchup-cpu-prof] [--no-keys] [--no-catchup] [--out FILE]`: only issue 13's "How cost grows" (the
// state parts; --throughput adds value sizes and member counts), the same functions as `npm run bench --
// --scaling --state-scaling` measures them with, without the rest of the bench (≈2 minutes of it).
// Run `npm run build` first: the controllers are the compiled build. Writes the figures into `--out`
// (default bench/results.json) under `scaling` and `stateScaling`, each stamped with this run's date,
// commit and load average, leaving the file's other figures (another run's) as they are.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/cleanup.ts';
import { progress } from './lib/progress.ts';
import { stateScalingOptions, UsageError } from './lib/stateScalingArgs.ts';

const USAGE = `usage: node --import tsx bench/scaling.ts [--throughput] [--keys LIST] [--catchup-mb N] [--catchup-value-bytes N] [--catchup-cpu-prof] [--no-keys] [--no-catchup] [--out FILE]`;
const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

async function main(): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let opts: ReturnType<typeof stateScalingOptions>;
  try {
    values = parse().values;
    opts = stateScalingOptions(values);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const raft = { heartbeatMs: 20, electionTimeoutMs: 150 }; // the bench's defaults
  const out = values.out ?? fileURLToPath(new URL('./results.json', import.meta.url));
  try {
    const { measureScaling, formatScaling } = await import('./lib/scaling.ts');
    const { measureKeysMemory, measureCatchUp, formatStateScaling } = await import('./lib/stateScaling.ts');
    const { gitInfo } = await import('./lib/report.ts');
    const { ROOT } = await import('./lib/controllerProcess.ts');
    const stamp = () => ({ date: new Date().toISOString(), git: gitInfo(ROOT), loadAverage: load() });
    progress(`load average ${load().join(' ')}`);
    const previous = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>) : {};
    const lines: string[] = [];
    if (values.throughput) {
      const scaling = { ...(await measureScaling({ raft })), measured: { ...stamp(), by: 'bench/scaling.ts' } };
      previous.scaling = scaling;
      lines.push(...formatScaling(scaling), '');
    }
    const keysMemory = values['no-keys'] ? [] : await measureKeysMemory({ raft, ...opts });
    const catchUp = values['no-catchup']
      ? null
      : await measureCatchUp({
          raft,
          ...(opts.catchUpMb === undefined ? {} : { stateMb: opts.catchUpMb }),
          ...(opts.catchUpValueBytes === undefined ? {} : { valueBytes: opts.catchUpValueBytes }),
          ...(opts.cpuProfile ? { cpuProfile: true } : {}),
        });
    const stateScaling = { date: new Date().toISOString(), keysMemory, catchUp, measured: { ...stamp(), by: 'bench/scaling.ts' } };
    previous.stateScaling = stateScaling;
    lines.push(...formatStateScaling(stateScaling));
    writeFileSync(out, `${JSON.stringify(previous, null, 2)}\n`);
    process.stdout.write(`${lines.join('\n')}\n`);
    progress(`wrote ${out} (scaling figures only; load average now ${load().join(' ')})`);
    return 0;
  } catch (err) {
    if (process.env.BENCH_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.stderr.write(`error: scaling bench failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await cleanupAll();
  }
}

function parse() {
  const parsed = parseArgs({
    args: process.argv.slice(2),
    options: {
      throughput: { type: 'boolean', default: false },
      keys: { type: 'string' },
      'catchup-mb': { type: 'string' },
      'catchup-value-bytes': { type: 'string' },
      'catchup-cpu-prof': { type: 'boolean', default: false },
      'no-keys': { type: 'boolean', default: false },
      'no-catchup': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (parsed.values['no-keys'] && parsed.values['no-catchup'] && !parsed.values.throughput) throw new UsageError('nothing to measure: --no-keys and --no-catchup without --throughput');
  return parsed;
}

process.exitCode = await main();
setTimeout(() => process.exit(), 1000).unref();
