// `conclave demo` (what `npm start` runs): an embedded controller on the in-process bus, initialized
// in front of the user, a few writes, its status, and the commands to try next. Ctrl-C stops it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController } from '../controller.ts';
import { startInspectorForController } from '../inspect/index.ts';
import { createLogger } from '../log/logger.ts';
import { createInProcessBus } from '../transport/inProcess.ts';
import { formatStatus } from './format.ts';

export interface DemoFlags {
  inspect?: string;
  dataDir?: string;
  /** exit after printing the status instead of waiting for Ctrl-C (used by tests) */
  once?: boolean;
}

const out = (line = '') => process.stdout.write(`${line}\n`);

export async function demoCommand(flags: DemoFlags): Promise<void> {
  const dataRoot = flags.dataDir ?? (await mkdtemp(join(tmpdir(), 'conclave-demo-')));
  const ownsData = flags.dataDir === undefined;
  const logger = createLogger({ level: (process.env.CONCLAVE_LOG_LEVEL as 'info' | undefined) ?? 'warn' });
  const bus = createInProcessBus();
  out('Conclave demo — controllers on the embedded in-process bus');
  out(`data in ${dataRoot}`);
  out();
  out('1. starting ctrl1: it opens its store and loads its identity before touching the bus');
  const ctrl1 = await startController({ name: 'ctrl1', dataDir: join(dataRoot, 'ctrl1'), transport: { bus }, logger });
  out(`   ctrl1 is ${ctrl1.phase}, cluster id ${ctrl1.status().clusterId ?? 'null'}`);
  let clusterId = ctrl1.status().clusterId;
  if (clusterId === null) {
    out('2. explicit initialization (conclave init --node ctrl1): a one-member cluster with a fresh UUID');
    clusterId = await ctrl1.init();
  } else {
    out('2. ctrl1 was already initialized: it resumes as a member of its cluster');
  }
  out(`   cluster id ${clusterId}`);
  await ctrl1.waitForLeader();
  out('3. writing through raft (durable in LMDB before it is acknowledged)');
  const member = ctrl1.memberRuntime();
  await member.propose({ op: 'put', key: 'greeting', value: 'hello from the demo' });
  await member.propose({ op: 'put', key: 'started', value: new Date().toISOString() });
  const read = (await member.read({ op: 'get', key: 'greeting' })) as { value: unknown };
  out(`   kv get greeting → ${JSON.stringify(read.value)} (linearizable read)`);
  out();
  out(formatStatus(ctrl1.status()));
  out();
  const inspector = flags.inspect ? await startInspectorForController(ctrl1, { listen: flags.inspect, logger: ctrl1.logFor('inspector') }) : null;
  if (inspector) {
    out(`Inspector: ${inspector.url}  (live statecharts of every node; open it in a browser)`);
    out();
  }
  out('Next, over a real NATS server (nats-server -p 4222 in another terminal):');
  out('  npx conclave run --name ctrl1 --data-dir /tmp/c1      # a blank node waits, phase uninitialized');
  out('  npx conclave status --node ctrl1 --json');
  out('  npx conclave init --node ctrl1                        # prints the new cluster id');
  out('  npx conclave kv put color blue --via ctrl1 && npx conclave kv get color --via ctrl1');
  out();
  if (flags.once) {
    await stop();
    return;
  }
  out('The demo keeps running; press Ctrl-C to stop it.');
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = () => {
      signals++;
      if (signals > 1) process.exit(130);
      out('\nstopping…');
      stop().then(resolve, (err: unknown) => {
        process.stderr.write(`error: demo did not stop cleanly: ${(err as Error).message}\n`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  async function stop(): Promise<void> {
    await inspector?.stop();
    await ctrl1.stop();
    await bus.close();
    if (ownsData) await rm(dataRoot, { recursive: true, force: true });
  }
}
