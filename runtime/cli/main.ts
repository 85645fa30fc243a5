// `conclave` — the command line. Every error is one `error: …` line on stderr; exit codes:
// 0 done · 1 refused · 2 usage or configuration · 3 unreachable.
// Start-up time matters for a CLI: modules a command does not need (NATS, zod schemas, the store,
// the inspector, the demo) are imported by the commands that use them, not here.
import { Command, CommanderError, Option } from 'commander';
import { codeOf, conclaveError, EXIT, exitCodeFor } from '../errors.ts';
import type { Bus } from '../transport/types.ts';
import { valueRefusal } from '../wire/limits.ts';
import { adminRequest, nodeNameArg } from './client.ts';
import { formatStatus } from './format.ts';
import { addInspectCommands } from './inspect.ts';
import { addClusterCommands } from './cluster.ts';
import { addStoreCommands } from './store.ts';
import { addNatsOptions } from './natsFlags.ts';
import type { NatsFlags } from '../config/common.ts';
import type { AdminSigner } from '../wire/adminAuth.ts';
import { addOperatorCommands } from './operator.ts';

export interface CommonFlags extends NatsFlags {
  prefix?: string;
  operatorKey?: string;
  timeout?: string;
  json?: boolean;
}

function addCommon(cmd: Command, defaultTimeoutMs = 5000): Command {
  return addNatsOptions(cmd)
    .option('--prefix <prefix>', 'subject prefix (default $CONCLAVE_PREFIX, else conclave)')
    .option('--operator-key <file>', 'operator key (or read-only key) that signs the requests, needed when the members list operator keys (default $CONCLAVE_OPERATOR_KEY)')
    .option('--timeout <ms>', 'how long to wait for an answer, in ms', String(defaultTimeoutMs))
    .option('--json', 'machine-readable output on stdout');
}

function timeoutOf(flags: CommonFlags): number {
  const ms = Number(flags.timeout ?? '5000');
  if (!Number.isInteger(ms) || ms <= 0) throw conclaveError('CONFIG', `--timeout ${flags.timeout}: must be a positive whole number of milliseconds`);
  return ms;
}

/** Connect as a tool, run one piece of work, close. `operator`: the operator key, when one is given (read before connecting: a bad one is exit 2) */
async function withBus<T>(flags: CommonFlags, work: (bus: Bus, prefix: string, timeoutMs: number, operator: AdminSigner | undefined) => Promise<T>): Promise<T> {
  const [{ commonFromEnv }, { connectNats }] = await Promise.all([import('../config/common.ts'), import('../transport/nats.ts')]);
  const common = commonFromEnv(process.env, flags);
  const timeoutMs = timeoutOf(flags);
  const keyFile = flags.operatorKey ?? process.env.CONCLAVE_OPERATOR_KEY;
  // a one-shot command sends a request or two: each signed, no operator session (runtime/operatorKey.ts)
  const operator = keyFile ? (await import('../operatorKey.ts')).operatorSigner(keyFile, { sessions: false }) : undefined;
  const bus = await connectNats({ ...common.nats, name: 'conclave-cli', maxReconnectAttempts: 0, timeoutMs: Math.min(timeoutMs, 5000) });
  try {
    return await work(bus, common.prefix, timeoutMs, operator);
  } finally {
    await bus.close();
  }
}

/** ask again while nothing answers on the node's subject (it is still starting), for up to `waitMs` */
async function untilAnswered<T>(waitMs: number, ask: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await ask();
    } catch (err) {
      if (codeOf(err) !== 'NO_RESPONDERS' || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function print(flags: CommonFlags, value: unknown, human: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

export function buildProgram(): Command {
  const program = new Command('conclave')
    .description('Conclave: controller clusters that bootstrap themselves safely (XState + NATS + LMDB)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  addNatsOptions(
    program
      .command('run')
      .description('run one controller process until SIGINT/SIGTERM (SIGHUP: reread the operator keys of --operators or --config)')
      .option('--config <file>', 'JSON config file (keys mirror the flags; flags override it)')
      .option('--name <name>', 'node name, ^[a-z0-9][a-z0-9_-]{0,62}$')
      .option('--data-dir <dir>', 'where the node keeps its LMDB store (default ./conclave-data/<name>)')
      .option('--init-from <src>', 'initialize a blank node from a seed JSON or a snapshot file')
      .option('--initial-members <names>', 'comma-separated names to add once bootstrapped')
      .option('--join-secret-file <file>', 'file holding the auto-join secret (members admit with it, joining nodes prove with it)')
      .option('--operators <file>', 'file of operator public keys, one a line (`conclave operator keygen` prints one): changes must be signed with one of them; without any, a node takes no change over NATS (default $CONCLAVE_OPERATORS)')
      .option('--join-cluster <uuid>', 'auto-join: announce on <prefix>.discover until this cluster adds the node')
      .option('--inspect <host:port>', 'serve the live inspector')
      .option('--inspect-public', 'let --inspect listen on an address other than loopback (it shows ids, terms and members to whoever reaches it)')
      .option('--record <file>', 'with --inspect: record the inspection stream (replay with `conclave inspect --replay FILE`)')
      .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (role, term, indexes, members, refusals, process)')
      .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
      .option('--prefix <prefix>', 'subject prefix (default $CONCLAVE_PREFIX, else conclave)'),
  ).action(async (flags) => {
    // loaded on demand: a client command need not load the store, raft and the inspector
    const { runCommand } = await import('./run.ts');
    await runCommand(flags);
  });

  addCommon(
    program
      .command('init')
      .description('explicit initialization: the node bootstraps a one-member cluster and prints its id')
      .requiredOption('--node <name>', 'the node to initialize', nodeNameArg),
  ).action(async (flags: CommonFlags & { node: string }) => {
    const result = await withBus(flags, (bus, prefix, t, op) => adminRequest(bus, prefix, flags.node, 'init', {}, t, op));
    print(flags, result, () => result.clusterId);
  });

  addCommon(
    program
      .command('status')
      .description("one node's view: phase, role, term, leader, members")
      .requiredOption('--node <name>', 'the node to ask', nodeNameArg)
      .option('--wait [ms]', 'a node just started: wait up to MS (default 30000) for it to answer instead of exiting 3 at once'),
  ).action(async (flags: CommonFlags & { node: string; wait?: string | true }) => {
    const waitMs = flags.wait === undefined ? 0 : flags.wait === true ? 30_000 : Number(flags.wait);
    if (!Number.isInteger(waitMs) || waitMs < 0) throw conclaveError('CONFIG', `--wait ${flags.wait}: must be a whole number of milliseconds`);
    const status = await withBus(flags, (bus, prefix, t, op) => untilAnswered(waitMs, () => adminRequest(bus, prefix, flags.node, 'status', {}, t, op)));
    print(flags, status, () => formatStatus(status));
  });

  const kv = program.command('kv').description('the built-in replicated key-value state');
  addCommon(kv.command('put').argument('<key>').argument('<value>', 'JSON value, or a plain string').requiredOption('--via <node>', 'any member; forwarded to the leader', nodeNameArg)).action(
    async (key: string, value: string, flags: CommonFlags & { via: string }) => {
      const parsed = parseValue(value);
      // the nodes refuse it too; here the refusal names the value's limit, not the message's
      const tooDeep = valueRefusal(parsed, 'the value');
      if (tooDeep !== null) throw conclaveError('BAD_REQUEST', `invalid command: ${tooDeep}`);
      const result = await withBus(flags, (bus, prefix, t, op) => adminRequest(bus, prefix, flags.via, 'propose', { command: { op: 'put', key, value: parsed } }, t, op));
      print(flags, result, () => 'OK');
    },
  );
  addCommon(
    kv
      .command('get')
      .argument('<key>')
      .requiredOption('--via <node>', 'any member', nodeNameArg)
      .option('--stale', 'read the local state without confirming leadership (may be out of date)'),
  ).action(async (key: string, flags: CommonFlags & { via: string; stale?: boolean }) => {
    const result = (await withBus(flags, (bus, prefix, t, op) =>
      adminRequest(bus, prefix, flags.via, 'read', { query: { op: 'get', key }, stale: flags.stale === true }, t, op),
    )) as { found: boolean; value: unknown };
    if (!result.found && !flags.json) {
      process.stderr.write(`error: key ${JSON.stringify(key)} not found\n`);
      process.exitCode = EXIT.refused;
      return;
    }
    print(flags, result, () => (typeof result.value === 'string' ? result.value : JSON.stringify(result.value)));
  });
  addCommon(kv.command('del').argument('<key>').requiredOption('--via <node>', 'any member', nodeNameArg)).action(async (key: string, flags: CommonFlags & { via: string }) => {
    const result = await withBus(flags, (bus, prefix, t, op) => adminRequest(bus, prefix, flags.via, 'propose', { command: { op: 'del', key } }, t, op));
    print(flags, result, () => 'OK');
  });

  addClusterCommands<CommonFlags & { via: string }>(program, { addCommon, withBus, print });

  const snapshot = program.command('snapshot').description('snapshots of the replicated state');
  addCommon(
    snapshot
      .command('save')
      .description('write a consistent snapshot of the replicated state to FILE (usable as --init-from)')
      .argument('<file>', 'where to write it (atomically: a temporary file, then rename)')
      .requiredOption('--via <node>', 'any member; the snapshot is taken by the leader', nodeNameArg),
    30_000,
  ).action(async (file: string, flags: CommonFlags & { via: string }) => {
    const { saveSnapshot, formatSaved } = await import('./snapshot.ts');
    const saved = await withBus(flags, (bus, prefix, t, op) => saveSnapshot(bus, prefix, flags.via, file, t, op));
    print(flags, saved, () => formatSaved(saved));
  });

  program
    .command('recover')
    .description('disaster recovery, offline: make this store the sole voter of its cluster, keeping cluster id and data')
    .requiredOption('--data-dir <dir>', 'the stopped node\'s data dir')
    .option('--json', 'machine-readable output on stdout')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { recoverCommand } = await import('./recover.ts');
      await recoverCommand(flags);
    });

  addStoreCommands(program);
  addOperatorCommands(program);

  addNatsOptions(
    program
      .command('demo')
      .description('what `npm start` runs: an example cluster on the embedded in-process bus, or on NATS when $NATS_URL or --nats is set'),
    'run on this NATS server instead of the in-process bus (default $NATS_URL; unset: in-process)',
  )
    .option('--inspect <host:port>', 'where the inspector serves', '127.0.0.1:7420')
    .option('--inspect-public', 'let --inspect listen on an address other than loopback')
    .option('--prefix <prefix>', 'subject prefix on NATS (default a fresh demo-<random> per run, so two demos never meet)')
    .option('--record <file>', 'record the inspection stream (replay with `conclave inspect --replay FILE`)')
    .option('--data-dir <dir>', 'where the demo keeps its stores (default: a fresh temporary folder)')
    .option('--once', 'print the status and exit instead of running until Ctrl-C')
    .action(async (flags) => {
      const { demoCommand } = await import('./demo.ts');
      await demoCommand(flags);
    });

  addInspectCommands(program);
  return program;
}

/** `42`, `true`, `{"a":1}` are JSON; anything else is taken as a plain string. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function reportError(err: unknown): number {
  const message = (err as Error)?.message ?? String(err);
  process.stderr.write(`error: ${message.replace(/^error: /, '').replace(/\n/g, ' ')}\n`);
  return exitCodeFor(codeOf(err));
}

/** Run one `conclave` command line; sets process.exitCode and resolves with it. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message ("error: unknown option …") or the help text
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? EXIT.ok : EXIT.usage;
    } else {
      process.exitCode = reportError(err);
    }
  }
  return Number(process.exitCode ?? EXIT.ok);
}

// the CLI runs on import, unless a test imports it to call main() in-process (test/fuzz/cli.test.ts)
// (not awaited: dist/cli/run.cjs, a CommonJS file, holds this module too; main() catches what it meets)
if (process.env.CONCLAVE_CLI_IN_PROCESS !== '1') void main(process.argv.slice(2));
